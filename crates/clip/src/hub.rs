//! Finding a model folder as Hugging Face tools do, without any network: a folder path, a
//! repository name looked up in the local Hugging Face cache (`HF_HUB_CACHE`, else
//! `HF_HOME/hub`, else `~/.cache/huggingface/hub`; the snapshot `refs/main` names, else the
//! newest), or, with no name, `CLIP_MODEL` and then openai/clip-vit-base-patch32 in the cache.
//!
//! Not here: downloading (nothing is fetched), loading (`model.rs`).

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The model looked for when none is named.
pub const DEFAULT_REPO: &str = "openai/clip-vit-base-patch32";

/// The environment variable naming a model folder.
pub const MODEL_ENV: &str = "CLIP_MODEL";

/// The Hugging Face hub cache folder (it may not exist).
pub fn hub_cache_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("HF_HOME").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p).join("hub"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/hub"))
}

/// The snapshot of `repo` (`org/name`) in the cache that holds `model.safetensors`: the one
/// `refs/main` names if it has the weights, else the most recently modified. `Ok(None)` when
/// the cache has no such snapshot; an error naming the conversion when it has the model as
/// `pytorch_model.bin` only.
pub fn cached_model(repo: &str) -> Result<Option<PathBuf>> {
    let Some(cache) = hub_cache_dir() else {
        return Ok(None);
    };
    let base = cache.join(format!("models--{}", repo.replace('/', "--")));
    let snaps = base.join("snapshots");
    let has_weights = |p: &Path| {
        p.join("model.safetensors").is_file()
            || crate::checkpoint::open_clip::WEIGHT_FILES
                .iter()
                .any(|f| p.join(f).is_file())
    };
    if let Ok(main) = std::fs::read_to_string(base.join("refs/main")) {
        let p = snaps.join(main.trim());
        if has_weights(&p) {
            return Ok(Some(p));
        }
    }
    let Ok(entries) = std::fs::read_dir(&snaps) else {
        return Ok(None);
    };
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    let mut pytorch_only = None;
    for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if has_weights(&p) {
            let t = std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            found.push((t, p));
        } else if p.join("pytorch_model.bin").is_file() {
            pytorch_only = Some(p);
        }
    }
    found.sort();
    match (found.pop(), pytorch_only) {
        (Some((_, p)), _) => Ok(Some(p)),
        (None, Some(p)) => Err(Error::MissingFile {
            path: p.join("model.safetensors"),
            what: PYTORCH_ONLY,
        }),
        (None, None) => Ok(None),
    }
}

/// What a folder with only PyTorch weights lacks, and how to convert it.
pub(crate) const PYTORCH_ONLY: &str = "model.safetensors (the folder has pytorch_model.bin, which \
     this engine does not read; convert it: python -c \"from transformers import CLIPModel; \
     CLIPModel.from_pretrained('DIR').save_pretrained('DIR')\")";

/// The model folder `spec` names: an existing folder, or a repository name (`org/name`) in
/// the local cache. With no `spec`: `CLIP_MODEL`, then [`DEFAULT_REPO`] in the cache.
/// `Ok(None)` when nothing was named and nothing is found.
pub fn find_model(spec: Option<&str>) -> Result<Option<PathBuf>> {
    let named = match spec {
        Some(s) => Some((s.to_string(), "model")),
        None => std::env::var(MODEL_ENV)
            .ok()
            .filter(|s| !s.is_empty())
            .map(|s| (s, MODEL_ENV)),
    };
    let Some((name, from)) = named else {
        return cached_model(DEFAULT_REPO);
    };
    let path = Path::new(&name);
    if path.is_dir() {
        return Ok(Some(path.to_path_buf()));
    }
    let looks_like_repo = name.split('/').count() == 2 && !name.starts_with(['.', '/']);
    if looks_like_repo {
        if let Some(p) = cached_model(&name)? {
            return Ok(Some(p));
        }
    }
    Err(Error::MissingFile {
        path: path.to_path_buf(),
        what: if from == MODEL_ENV {
            "model folder (named by CLIP_MODEL)"
        } else if looks_like_repo {
            "model folder, or a snapshot of that repository in the Hugging Face cache \
             (nothing is downloaded)"
        } else {
            "model folder"
        },
    })
}
