//! Finding the model folder: `--model DIR`, then `CLIP_MODEL`, then a Hugging Face cache
//! snapshot of openai/clip-vit-base-patch32 (honouring `HF_HUB_CACHE` and `HF_HOME`).

use std::path::{Path, PathBuf};

const REPO: &str = "openai/clip-vit-base-patch32";

/// The message printed when no model is found.
pub fn not_found() -> String {
    format!(
        "no CLIP model found: pass --model DIR, set CLIP_MODEL, or put a snapshot of {REPO} in the \
         Hugging Face cache. A folder needs config.json and model.safetensors (optionally \
         preprocessor_config.json, vocab.json, merges.txt), downloadable from \
         https://huggingface.co/{REPO}; or try the engine with --random-weights"
    )
}

fn hub_cache() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("HF_HOME") {
        return Some(PathBuf::from(p).join("hub"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/hub"))
}

/// A snapshot folder of the default model in the Hugging Face cache that has the weights.
fn cached_snapshot() -> Option<PathBuf> {
    let snaps = hub_cache()?
        .join("models--openai--clip-vit-base-patch32")
        .join("snapshots");
    let mut found: Vec<PathBuf> = std::fs::read_dir(snaps)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.safetensors").is_file())
        .collect();
    found.sort();
    found.pop()
}

/// The model folder to use, or `None` when there is none.
pub fn find(explicit: Option<&Path>) -> Result<Option<PathBuf>, String> {
    if let Some(p) = explicit {
        if !p.is_dir() {
            return Err(format!("--model {}: not a folder", p.display()));
        }
        return Ok(Some(p.to_path_buf()));
    }
    if let Some(p) = std::env::var_os("CLIP_MODEL").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_dir() {
            return Err(format!("CLIP_MODEL={}: not a folder", p.display()));
        }
        return Ok(Some(p));
    }
    Ok(cached_snapshot())
}
