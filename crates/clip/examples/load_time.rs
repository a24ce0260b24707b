//! Times loading a model folder (mmap, validation, pre-packing) and the first image
//! embedding: `cargo run --release -p clip --example load_time -- DIR [THREADS]`.

use clip::{ClipModel, LoadOptions, PixelValues};
use std::time::Instant;

fn main() -> Result<(), clip::Error> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("models/clip-vit-b32-random");
    let threads = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(0);
    let t = Instant::now();
    let model = ClipModel::load_with(dir, &LoadOptions::new().threads(threads))?;
    let load = t.elapsed();
    let s = model.config().vision.image_size;
    let px = PixelValues {
        data: vec![0.1f32; 3 * s * s],
        shape: [1, 3, s, s],
    };
    let t = Instant::now();
    model.embed_pixels(&px)?;
    println!(
        "load {:.0} ms, first image embedding {:.0} ms",
        load.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
