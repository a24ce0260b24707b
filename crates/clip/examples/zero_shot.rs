//! Zero-shot classification with the library, as the README shows it:
//! `cargo run --release -p clip --example zero_shot -- MODEL_DIR IMAGE cat dog bird`

use clip::{ClipModel, LoadOptions, Truncation, IMAGENET_TEMPLATES};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, image, labels @ ..] = args.as_slice() else {
        eprintln!("usage: zero_shot MODEL_DIR IMAGE LABEL...");
        std::process::exit(2);
    };
    // Loads model.safetensors, config.json, preprocessor_config.json and the vocabulary.
    let model = ClipModel::load_with(dir, &LoadOptions::new().threads(2))?; // Send + Sync
    let images = model.embed_image_files(&[image])?; // decoded, preprocessed, L2-normalised

    // One prompt per label, or the CLIP paper's 80-template ensemble.
    let classifier = model.zero_shot_classifier(labels, &IMAGENET_TEMPLATES, Truncation::Refuse)?;
    for p in &classifier.classify(&images, 3)?[0] {
        println!("{:.4}  {}", p.prob, p.label);
    }

    // Texts against images: cosines, CLIP's logits and probabilities from one matrix.
    let texts = model.embed_texts(&["a photo of a cat", "a diagram"], Truncation::Refuse)?;
    let sim = model.similarity(&images, &texts)?;
    println!("cosine {:?}, probs {:?}", sim.cosine(), sim.probs());
    Ok(())
}
