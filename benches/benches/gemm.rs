//! criterion: GEMM GFLOP/s on CLIP's shapes at 1 and 2 threads, for each ISA with and without
//! a pre-packed B, beside `faer`, `gemm` and `matrixmultiply`; the same shapes with a bf16 B
//! and an int8 B (each bf16 kernel and the int8 kernel beside the f32 pre-packed one); and
//! the FMA, bf16 dot and int8 peaks.
//!
//! `cargo bench -p clip-benches --bench gemm` (`-- gemm_bf16` for the low-precision groups
//! only). Throughput is reported as elements = FLOP, so
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

/// The shapes of the bf16 and int8 comparison: ViT-B/32 at batch 1 (50 rows) and 8 (400 rows), the
/// text tower (77), and 1024^3.
const BF16_SHAPES: [(usize, usize, usize); 7] = [
    (50, 768, 2304),
    (50, 768, 3072),
    (50, 3072, 768),
    (400, 768, 3072),
    (400, 3072, 768),
    (77, 512, 2048),
    (1024, 1024, 1024),
];

fn gemm_bf16(c: &mut Criterion) {
    use clip_kernels::{sgemm_prepacked, Bf16Kernel, Epilogue, Isa, MatMut, MatRef, PackedB};
    for threads in [1usize, 2] {
        let pool = pool(threads);
        for (m, k, n) in BF16_SHAPES {
            let mut group = c.benchmark_group(format!("gemm_bf16/{m}x{k}x{n}/t{threads}"));
            group.throughput(Throughput::Elements((2 * m * k * n) as u64));
            group
                .sample_size(10)
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(1));
            let a = fill(m * k, 1);
            let w = fill(n * k, 2);
            let b = MatRef::row_major(&w, n, k).t();
            let mut out = vec![0.0f32; m * n];
            let isa = Isa::detect();
            let mut packs = vec![(format!("{isa}-f32"), pool.install(|| PackedB::new(isa, b)))];
            for kind in [Bf16Kernel::Convert, Bf16Kernel::Dot] {
                if kind.is_available(isa) {
                    let p = pool.install(|| PackedB::new_bf16(isa, b).with_bf16_kernel(kind));
                    packs.push((format!("{isa}-bf16-{kind}"), p));
                }
            }
            // int8: weights quantised per column when packed, A per row at each product.
            let p = pool.install(|| PackedB::new_int8(isa, b));
            packs.push((format!("{isa}-int8"), p));
            for (name, p) in &packs {
                group.bench_function(name.as_str(), |bch| {
                    bch.iter(|| {
                        pool.install(|| {
                            sgemm_prepacked(
                                1.0,
                                MatRef::row_major(&a, m, k),
                                p,
                                0.0,
                                MatMut::row_major(&mut out, m, n),
                                Epilogue::none(),
                            )
                        })
                    })
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
        if let Some(gf) = pool.install(|| clip_kernels::peak::bf16_dot_peak_gflops(5_000_000)) {
            eprintln!("bf16 dot peak avx512bf16 threads={threads}: {gf:.1} GFLOP/s");
        }
        if let Some(g) = pool.install(|| clip_kernels::peak::int8_peak_gops(isa, 5_000_000)) {
            eprintln!("int8 peak {isa} threads={threads}: {g:.1} GOP/s");
        }
    }
}

criterion_group!(benches, fma_peak, gemm, gemm_bf16);
criterion_main!(benches);
