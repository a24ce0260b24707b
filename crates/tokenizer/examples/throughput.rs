//! Quick single-threaded and batch throughput check on the reference corpus
//! (the criterion bench in `benches/` is the measurement of record).
//!
//! `cargo run --release -p clip-tokenizer --example throughput`

use std::io::Read;
use std::time::Instant;

use clip_tokenizer::Tokenizer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tokenizer_reference.jsonl.gz"
    );
    let mut s = String::new();
    flate2::read::GzDecoder::new(&std::fs::read(path)?[..]).read_to_string(&mut s)?;
    let texts: Vec<String> = s
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["t"].as_str().map(str::to_string))
        .collect();
    let prose: Vec<&String> = texts.iter().filter(|t| t.is_ascii()).collect();
    let tok = Tokenizer::new()?;
    for (name, set) in [
        ("ascii lines", prose),
        ("mixed corpus", texts.iter().collect()),
    ] {
        let bytes: usize = set.iter().map(|t| t.len()).sum();
        let mut best = f64::MAX;
        let mut tokens = 0;
        for _ in 0..5 {
            let t0 = Instant::now();
            tokens = set.iter().map(|t| tok.encode(t).len()).sum::<usize>();
            best = best.min(t0.elapsed().as_secs_f64());
        }
        let t0 = Instant::now();
        let batch: usize = tok.encode_batch(&set).iter().map(Vec::len).sum();
        let bt = t0.elapsed().as_secs_f64();
        println!(
            "{name}: {} texts, {tokens} tokens, {:.2} MB: single {:.2} M tok/s ({:.1} MB/s), batch {:.2} M tok/s",
            set.len(),
            bytes as f64 / 1e6,
            tokens as f64 / best / 1e6,
            bytes as f64 / best / 1e6,
            batch as f64 / bt / 1e6
        );
    }
    Ok(())
}
