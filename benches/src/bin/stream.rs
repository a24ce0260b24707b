//! GEMM on weights streamed from memory, as a model's forward pass sees them: `COPIES`
//! distinct pre-packed `[N, K]` weights (more than the caches hold) multiplied in turn by one
//! `[M, K]` A; prints the median of 20 passes, the weight bytes per second and GFLOP/s.
//! `clip bench gemm` reuses one cache-resident weight instead.
//!
//! `cargo run --release -p clip-benches --bin stream -- M K N THREADS COPIES`
//! (e.g. `8 512 2048 2 18`: the text encoder's fc1 on 8 tokens, 75 MB of weights).

use clip_kernels::gemm::{sgemm_prepacked, Epilogue, MatMut, MatRef, PackedB};
use std::time::Instant;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("arguments are M K N THREADS COPIES"))
        .collect();
    let [m, k, n, threads, copies] = args[..] else {
        eprintln!("usage: stream M K N THREADS COPIES");
        std::process::exit(2);
    };
    let isa = clip_kernels::Isa::detect();
    let pool = clip_benches::pool(threads);
    let weights: Vec<PackedB> = (0..copies)
        .map(|s| {
            let w = clip_benches::fill(n * k, s + 2);
            PackedB::new(isa, MatRef::row_major(&w, n, k).t())
        })
        .collect();
    let a = clip_benches::fill(m * k, 1);
    let mut c = vec![0.0f32; m * n];
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        pool.install(|| {
            for w in &weights {
                let (av, cv) = (MatRef::row_major(&a, m, k), MatMut::row_major(&mut c, m, n));
                sgemm_prepacked(1.0, av, w, 0.0, cv, Epilogue::none());
            }
        });
        times.push(t.elapsed().as_secs_f64());
    }
    let t = clip_benches::median(times);
    let bytes = (copies * n * k * 4) as f64;
    let flop = 2.0 * (m * n * k * copies) as f64;
    println!(
        "m={m} k={k} n={n} threads={threads} copies={copies} ({isa}): {:.2} ms, {:.1} GB/s of weights, {:.1} GFLOP/s",
        t * 1e3,
        bytes / t / 1e9,
        flop / t / 1e9
    );
}
