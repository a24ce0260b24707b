//! Times loading a model folder (mmap, validation, pre-packing) and the first image
//! embedding: `cargo run --release -p clip --example load_time -- DIR [THREADS]`.

use std::time::Instant;

fn main() -> Result<(), clip::Error> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("models/clip-vit-b32-random");
    let threads = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(0);
    let t = Instant::now();
    let model = clip::ClipModel::load_with(
        dir,
        &clip::LoadOptions {
            threads,
            ..Default::default()
        },
    )?;
    let load = t.elapsed();
    let s = model.config.vision.image_size;
    let px = vec![0.1f32; 3 * s * s];
    let t = Instant::now();
    model.encode_pixels(&px, 1)?;
    println!(
        "load {:.0} ms, first image embedding {:.0} ms",
        load.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
