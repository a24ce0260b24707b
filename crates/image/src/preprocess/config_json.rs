//! Parsing HF's `preprocessor_config.json` into [`PreprocessConfig`].
//!
//! Accepts both the old form (`"size": 224`, `"crop_size": 224`) and the new one
//! (`{"shortest_edge": 224}`, `{"height": 224, "width": 224}`). Bicubic (`"resample": 3`)
//! and bilinear (2) resampling are supported; other keys are ignored.

use std::path::Path;

use serde_json::Value;

use super::{PreprocessConfig, ResizeTarget};
use crate::Filter;
use crate::{Error, Result};

fn invalid(path: &Path, reason: String) -> Error {
    Error::InvalidPreprocessorConfig {
        path: path.to_path_buf(),
        reason,
    }
}

fn as_size(v: &Value, key: &str, path: &Path) -> Result<usize> {
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| invalid(path, format!("`{key}` must be a positive integer, got {v}")))
}

fn as_triple(v: &Value, key: &str, path: &Path) -> Result<[f64; 3]> {
    let err = || {
        invalid(
            path,
            format!("`{key}` must be a number or 3 numbers, got {v}"),
        )
    };
    if let Some(x) = v.as_f64() {
        return Ok([x; 3]);
    }
    let arr = v.as_array().ok_or_else(err)?;
    if arr.len() != 3 {
        return Err(err());
    }
    let mut out = [0.0; 3];
    for (o, x) in out.iter_mut().zip(arr) {
        *o = x.as_f64().ok_or_else(err)?;
    }
    Ok(out)
}

fn parse_size(v: &Value, path: &Path) -> Result<ResizeTarget> {
    if v.is_number() {
        return Ok(ResizeTarget::ShortestEdge(as_size(v, "size", path)?));
    }
    if let Some(n) = v.get("shortest_edge") {
        return Ok(ResizeTarget::ShortestEdge(as_size(
            n,
            "size.shortest_edge",
            path,
        )?));
    }
    match (v.get("height"), v.get("width")) {
        (Some(h), Some(w)) => Ok(ResizeTarget::Exact {
            height: as_size(h, "size.height", path)?,
            width: as_size(w, "size.width", path)?,
        }),
        _ => Err(invalid(path, format!("unsupported `size`: {v}"))),
    }
}

fn parse_crop(v: &Value, path: &Path) -> Result<(usize, usize)> {
    if v.is_number() {
        let n = as_size(v, "crop_size", path)?;
        return Ok((n, n));
    }
    match (v.get("height"), v.get("width")) {
        (Some(h), Some(w)) => Ok((
            as_size(h, "crop_size.height", path)?,
            as_size(w, "crop_size.width", path)?,
        )),
        _ => Err(invalid(path, format!("unsupported `crop_size`: {v}"))),
    }
}

fn flag(root: &Value, key: &str, default: bool, path: &Path) -> Result<bool> {
    match root.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| invalid(path, format!("`{key}` must be true or false, got {v}"))),
    }
}

/// Parses the JSON; missing keys keep the CLIP defaults.
pub(super) fn parse(bytes: &[u8], path: &Path) -> Result<PreprocessConfig> {
    let root: Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(path, format!("not valid JSON: {e}")))?;
    if !root.is_object() {
        return Err(invalid(path, "top level is not an object".to_string()));
    }
    let mut cfg = PreprocessConfig::default();
    if let Some(r) = root.get("resample").filter(|r| !r.is_null()) {
        cfg.resample = match r.as_u64() {
            Some(3) => Filter::Bicubic,
            Some(2) => Filter::Bilinear,
            _ => {
                return Err(invalid(
                    path,
                    format!("resample {r} is not supported (3: bicubic, 2: bilinear)"),
                ))
            }
        };
    }
    cfg.do_resize = flag(&root, "do_resize", cfg.do_resize, path)?;
    cfg.do_center_crop = flag(&root, "do_center_crop", cfg.do_center_crop, path)?;
    cfg.do_rescale = flag(&root, "do_rescale", cfg.do_rescale, path)?;
    cfg.do_normalize = flag(&root, "do_normalize", cfg.do_normalize, path)?;
    if let Some(v) = root.get("size").filter(|v| !v.is_null()) {
        cfg.size = parse_size(v, path)?;
    }
    if let Some(v) = root.get("crop_size").filter(|v| !v.is_null()) {
        (cfg.crop_height, cfg.crop_width) = parse_crop(v, path)?;
    }
    if let Some(v) = root.get("rescale_factor").filter(|v| !v.is_null()) {
        cfg.rescale_factor = v
            .as_f64()
            .ok_or_else(|| invalid(path, format!("`rescale_factor` must be a number, got {v}")))?;
    }
    if let Some(v) = root.get("image_mean").filter(|v| !v.is_null()) {
        cfg.image_mean = as_triple(v, "image_mean", path)?;
    }
    if let Some(v) = root.get("image_std").filter(|v| !v.is_null()) {
        cfg.image_std = as_triple(v, "image_std", path)?;
    }
    Ok(cfg)
}
