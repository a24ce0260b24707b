//! Embeds every PNG and JPEG in a folder and ranks them by a text query, with the public API
//! only: `cargo run --release -p clip --example search_folder -- MODEL_DIR FOLDER "a dog"`

use clip::{ClipModel, LoadOptions, Truncation};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, folder, query] = args.as_slice() else {
        eprintln!("usage: search_folder MODEL_DIR FOLDER QUERY");
        std::process::exit(2);
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            matches!(ext.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg")
        })
        .collect();
    files.sort();
    let model = ClipModel::load_with(dir, &LoadOptions::new().batch_size(16))?;
    // In batches of 16, so memory stays flat however many files there are.
    let images = model.embed_image_files(&files)?;
    let text = model.embed_texts(&[query], Truncation::Cut)?;
    let scores = model.similarity(&images, &text)?;
    let mut ranked: Vec<(f32, &PathBuf)> = scores.cosine().iter().copied().zip(&files).collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (score, path) in ranked.iter().take(10) {
        println!("{score:.4}  {}", path.display());
    }
    Ok(())
}
