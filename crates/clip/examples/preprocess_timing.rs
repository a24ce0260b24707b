//! Times decode + preprocess of one image file on a single thread and prints the
//! median milliseconds per image as `median_ms=<x>` (and, on stderr, the median
//! of decoding alone). Driven by
//! `tools/reference/bench_pil_preprocess.py`, which interleaves it with PIL +
//! CLIPImageProcessor runs on the same file.
//!
//! Usage: `preprocess_timing FILE [ITERATIONS]`.

use std::path::PathBuf;
use std::time::Instant;

use clip::image::Preprocessor;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next().map(PathBuf::from) else {
        eprintln!("usage: preprocess_timing FILE [ITERATIONS]");
        std::process::exit(2);
    };
    let iterations: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(20);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            std::process::exit(1);
        }
    };
    let pre = Preprocessor::default();
    // One worker thread: jpeg-decoder's internal rayon use stays on it too.
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: thread pool: {e}");
            std::process::exit(1);
        }
    };
    let mut times = Vec::with_capacity(iterations);
    let mut decode_times = Vec::with_capacity(iterations);
    for _ in 0..iterations.max(1) {
        let t = Instant::now();
        let out = pool.install(|| pre.preprocess_bytes(&bytes, &path));
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if let Err(e) = out {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        let t = Instant::now();
        let _ = pool.install(|| clip::image::decode_bytes(&bytes, &path, &pre.decode));
        decode_times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // First line is what the Python driver parses.
    println!("median_ms={:.4}", median(&mut times));
    eprintln!("decode_only_median_ms={:.4}", median(&mut decode_times));
}
