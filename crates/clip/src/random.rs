//! Random-weight models: a model of any configuration with seeded random weights, made by
//! the same loader code as a model from a file (the random source of `loader.rs`), for
//! trying the engine and for benchmarks. Its embeddings mean nothing.
//!
//! Also the bytes of a safetensors file in Hugging Face names holding such weights, for the
//! fuzz targets' seeds and tests that need a weight file.
//! Not here: the distributions (`loader::random`).

use crate::checkpoint::{hf, Stored};
use crate::loader::{Recorded, Source};
use crate::model::Towers;
use crate::{ClipConfig, LoadOptions, Result};
use std::sync::Mutex;

/// The bytes of a safetensors file (Hugging Face key names, F32) holding the weights
/// [`crate::ClipModel::random`] makes for `cfg` and `seed`: loading it gives the same model.
#[doc(hidden)]
pub fn random_safetensors(cfg: &ClipConfig, seed: u64) -> Result<Vec<u8>> {
    let src = Source::Random {
        seed,
        record: Some(Mutex::new(Vec::new())),
    };
    Towers::load(&src, cfg, &LoadOptions::new().threads(1))?;
    let Source::Random {
        record: Some(record),
        ..
    } = src
    else {
        unreachable!("the source was made with a record above")
    };
    let tensors = record.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(serialize(&split_stacked(tensors)))
}

/// Tensors the file format keeps as several (q, k and v) split into their parts.
fn split_stacked(tensors: Vec<Recorded>) -> Vec<Recorded> {
    let mut out = Vec::new();
    for (name, shape, data) in tensors {
        match hf::resolve(&name) {
            Stored::Stacked(parts) => {
                let mut part_shape = shape.clone();
                part_shape[0] /= parts.len();
                let len = data.len() / parts.len();
                for (key, chunk) in parts.into_iter().zip(data.chunks(len.max(1))) {
                    out.push((key, part_shape.clone(), chunk.to_vec()));
                }
            }
            Stored::Key(key) | Stored::Transposed(key) => out.push((key, shape, data)),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A safetensors file of F32 tensors.
fn serialize(tensors: &[Recorded]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape, data) in tensors {
        let bytes = data.len() * 4;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut json = serde_json::Value::Object(header).to_string().into_bytes();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + offset);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for (_, _, data) in tensors {
        for v in data {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}
