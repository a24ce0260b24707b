//! Shared helpers for the criterion benches: the GEMM shapes CLIP runs, deterministic inputs,
//! and a median.

/// The GEMM shapes (M, K, N) of CLIP ViT-B/32: vision at batch 1 (50 tokens) and 8 (400),
/// text at 77 tokens, plus the classic 1024^3.
pub const CLIP_GEMM_SHAPES: [(usize, usize, usize); 9] = [
    (50, 768, 2304),
    (50, 768, 768),
    (50, 768, 3072),
    (50, 3072, 768),
    (400, 768, 3072),
    (77, 512, 1536),
    (77, 512, 2048),
    (77, 2048, 512),
    (1024, 1024, 1024),
];

/// Deterministic values in [-0.5, 0.5).
pub fn fill(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i.wrapping_mul(7919).wrapping_add(seed * 104_729)) % 1000) as f32 / 1000.0 - 0.5)
        .collect()
}

/// The median of a set of timings.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// A rayon pool of exactly `n` threads.
pub fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .expect("thread pool")
}
