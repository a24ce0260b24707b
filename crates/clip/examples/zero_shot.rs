//! Zero-shot classification with the library (the README's example):
//! `cargo run --release -p clip --example zero_shot -- MODEL_DIR IMAGE cat dog bird`

use clip::image::Preprocessor;
use clip::ClipModel;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, image, labels @ ..] = args.as_slice() else {
        eprintln!("usage: zero_shot MODEL_DIR IMAGE LABEL...");
        std::process::exit(2);
    };
    let model = ClipModel::load(dir)?;
    let pixels = Preprocessor::from_model_dir(Path::new(dir))?.preprocess_file(Path::new(image))?;
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    for (label, prob) in model.classify_pixels(&pixels.data, &labels, "a photo of a {}.")? {
        println!("{prob:.4}  {label}");
    }
    Ok(())
}
