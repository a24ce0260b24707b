//! criterion: GEMM GFLOP/s on CLIP's shapes at 1 and 2 threads, for each ISA with and without
//! a pre-packed B, beside `faer`, `gemm` and `matrixmultiply`; and the FMA peak.
//!
//! `cargo bench -p clip-benches --bench gemm`. Throughput is reported as elements = FLOP, so
//! criterion's "elem/s" reads as FLOP/s. For interleaved side-by-side medians use the
//! `gemm_vs_peers` bench.

#[path = "common/peers.rs"]
mod peers;

use clip_benches::{fill, pool, CLIP_GEMM_SHAPES};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;

fn gemm(c: &mut Criterion) {
    for threads in [1usize, 2] {
        let pool = pool(threads);
        for (m, k, n) in CLIP_GEMM_SHAPES {
            let mut group = c.benchmark_group(format!("gemm/{m}x{k}x{n}/t{threads}"));
            group.throughput(Throughput::Elements((2 * m * k * n) as u64));
            group
                .sample_size(10)
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(1));
            let a = fill(m * k, 1);
            let w = fill(n * k, 2);
            let mut out = vec![0.0f32; m * n];
            if threads > 1 {
                std::env::set_var("MATMUL_NUM_THREADS", threads.to_string());
            }
            for who in peers::contenders(&w, k, n, &pool) {
                group.bench_function(who.name(), |b| {
                    b.iter(|| pool.install(|| who.run(&a, &w, &mut out, m, k, n, threads)))
                });
            }
            group.finish();
        }
    }
}

fn fma_peak(c: &mut Criterion) {
    for threads in [1usize, 2] {
        let pool = pool(threads);
        let isa = clip_kernels::Isa::detect();
        let gf = clip_benches::median(
            (0..5)
                .map(|_| pool.install(|| clip_kernels::peak::fma_peak_gflops(isa, 20_000_000)))
                .collect(),
        );
        eprintln!("fma peak {isa} threads={threads}: {gf:.1} GFLOP/s");
        c.bench_function(&format!("fma_peak/{isa}/t{threads}"), |b| {
            b.iter(|| pool.install(|| clip_kernels::peak::fma_peak_gflops(isa, 1_000_000)))
        });
    }
}

criterion_group!(benches, fma_peak, gemm);
criterion_main!(benches);
