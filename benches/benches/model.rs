//! End-to-end encoder throughput of the full-size ViT-B/32, the cases of the performance
//! issue: image batch 1 and 8; text "a photo of a cat." (8 ids, no padding), 77 ids, and a
//! batch of 8 short prompts; each with f32, bf16 and int8 weights, on 2 threads (or
//! `CLIP_BENCH_THREADS`).
//!
//! The weights are `CLIP_MODEL` (a model folder) if set, else the seeded random ViT-B/32 built
//! in memory (`ClipModel::random`): same shapes and FLOPs, meaningless outputs.
//!
//! `cargo bench -p clip-benches --bench model` (criterion; throughput in items).
//! `clip bench` measures the same cases from the command line, and
//! `tools/bench_vs_peers.py` against PyTorch and ONNX Runtime.

use clip::{ClipConfig, ClipModel, LoadOptions, PixelValues, Precision};
use criterion::{black_box, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

const SOT: u32 = 49406;
const EOT: u32 = 49407;
/// "a photo of a cat." as OpenAI's tokenizer gives it.
const PROMPT: [u32; 6] = [320, 1125, 539, 320, 2368, 269];

fn model(precision: Precision, threads: usize) -> ClipModel {
    let opts = LoadOptions::new().threads(threads).precision(precision);
    match std::env::var("CLIP_MODEL") {
        Ok(dir) => ClipModel::load_with(&dir, &opts).expect("CLIP_MODEL folder"),
        Err(_) => ClipModel::random(&ClipConfig::vit_base_patch32(), 0, &opts).expect("model"),
    }
}

/// SOT, the prompt's ids repeated to `n - 2`, EOT.
fn ids(n: usize) -> Vec<u32> {
    let mut v = vec![SOT];
    v.extend(PROMPT.iter().cycle().take(n - 2));
    v.push(EOT);
    v
}

fn main() {
    let threads = std::env::var("CLIP_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6));
    for precision in [Precision::F32, Precision::Bf16, Precision::Int8] {
        let name = match precision {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        };
        let m = model(precision, threads);
        let s = m.config().vision.image_size;
        let mut g = c.benchmark_group(format!("image_{name}_t{threads}"));
        for batch in [1usize, 8] {
            let px = PixelValues {
                data: (0..batch * 3 * s * s)
                    .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0)
                    .collect(),
                shape: [batch, 3, s, s],
            };
            g.throughput(Throughput::Elements(batch as u64));
            g.bench_function(BenchmarkId::new("batch", batch), |b| {
                b.iter(|| black_box(m.embed_pixels(&px).unwrap()))
            });
        }
        g.finish();
        let mut g = c.benchmark_group(format!("text_{name}_t{threads}"));
        for (label, n, batch) in [("short", 8, 1usize), ("77", 77, 1), ("short_b8", 8, 8)] {
            let seq = ids(n);
            let seqs: Vec<&[u32]> = vec![&seq; batch];
            g.throughput(Throughput::Elements(batch as u64));
            g.bench_function(label, |b| {
                b.iter(|| black_box(m.embed_token_ids(&seqs).unwrap()))
            });
        }
        g.finish();
    }
    c.final_summary();
}
