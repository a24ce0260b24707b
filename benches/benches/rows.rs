//! Throughput of the row kernels and attention, per kernel set, on CLIP's shapes.
//!
//! Softmax over score rows of 50 (ViT-B/32 image tokens) and 77 (text tokens), layernorm over
//! 768- and 512-wide rows, the GELUs over an MLP activation, and attention for
//! ViT-B/32 (T=50, H=12, D=64; B=1 and B=8) and the text tower (T=77, H=8, D=64, causal).
//! Elementwise and row kernels report elements/s; attention reports FLOP/s as "elem/s"
//! (4*B*H*T*T*D per call, the two matrix products). Attention runs at 1 and 2 threads.
//!
//! `cargo bench -p clip-benches --bench rows -- --warm-up-time 1 --measurement-time 2`

use clip_kernels::rows::{self, SoftmaxMask};
use clip_kernels::{attention, AttentionShape, Isa};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 8.0 - 4.0
        })
        .collect()
}

fn softmax(c: &mut Criterion) {
    let mut g = c.benchmark_group("softmax");
    // (rows, cols, mask): all heads' score rows of one image / one caption.
    for (r, cols, causal) in [
        (12 * 50, 50, false),
        (8 * 77, 77, false),
        (8 * 77, 77, true),
    ] {
        g.throughput(Throughput::Elements((r * cols) as u64));
        for isa in Isa::available() {
            let mut x = data(r * cols, 1);
            let mask = if causal {
                SoftmaxMask::Causal
            } else {
                SoftmaxMask::None
            };
            let name = format!("{r}x{cols}{}", if causal { "_causal" } else { "" });
            g.bench_function(BenchmarkId::new(name, isa), |b| {
                b.iter(|| rows::softmax_rows(isa, black_box(&mut x), cols, mask))
            });
        }
    }
    g.finish();
}

fn layernorm(c: &mut Criterion) {
    let mut g = c.benchmark_group("layernorm");
    for (r, cols) in [(50, 768), (77, 512)] {
        g.throughput(Throughput::Elements((r * cols) as u64));
        let (x, w, bias) = (data(r * cols, 2), data(cols, 3), data(cols, 4));
        let mut out = vec![0.0f32; r * cols];
        for isa in Isa::available() {
            g.bench_function(BenchmarkId::new(format!("{r}x{cols}"), isa), |b| {
                b.iter(|| rows::layernorm_rows(isa, black_box(&x), &mut out, cols, &w, &bias, 1e-5))
            });
        }
    }
    g.finish();
}

fn gelus(c: &mut Criterion) {
    let mut g = c.benchmark_group("gelu");
    let n = 50 * 3072; // one ViT-B/32 MLP activation
    g.throughput(Throughput::Elements(n as u64));
    let x = data(n, 5);
    let mut y = x.clone();
    for isa in Isa::available() {
        g.bench_function(BenchmarkId::new("gelu_50x3072", isa), |b| {
            b.iter(|| {
                y.copy_from_slice(&x);
                rows::gelu(isa, black_box(&mut y))
            })
        });
        g.bench_function(BenchmarkId::new("quick_gelu_50x3072", isa), |b| {
            b.iter(|| {
                y.copy_from_slice(&x);
                rows::quick_gelu(isa, black_box(&mut y))
            })
        });
    }
    g.finish();
}

fn attention_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("attention");
    // Head widths of the open_clip models: 64 (B, L), 80 (H/14: 1280 / 16), 104 (bigG/14:
    // 1664 / 16), at the 257 tokens of a 224px image in 14px patches.
    let cases = [
        ("vit_b1_t50_h12", 1, 50, 12, 64, false),
        ("vit_b8_t50_h12", 8, 50, 12, 64, false),
        ("text_b1_t77_h8_causal", 1, 77, 8, 64, true),
        ("vit_l14_t257_d64", 1, 257, 16, 64, false),
        ("vit_h14_t257_d80", 1, 257, 16, 80, false),
        ("vit_bigg14_t257_d104", 1, 257, 16, 104, false),
    ];
    for (label, batch, seq, heads, d, causal) in cases {
        let shape = AttentionShape {
            batch,
            seq,
            heads,
            head_dim: d,
        };
        let hd = heads * d;
        let qkv = data(batch * seq * 3 * hd, 6);
        let mut out = vec![0.0f32; batch * seq * hd];
        g.throughput(Throughput::Elements(
            (4 * batch * heads * seq * seq * d) as u64,
        ));
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for isa in Isa::available() {
                let id = BenchmarkId::new(format!("{label}_t{threads}"), isa);
                g.bench_function(id, |b| {
                    b.iter(|| {
                        pool.install(|| {
                            attention(
                                isa,
                                &qkv,
                                &qkv[hd..],
                                &qkv[2 * hd..],
                                3 * hd,
                                &mut out,
                                shape,
                                causal,
                                1.0 / (d as f32).sqrt(),
                            )
                        })
                    })
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, softmax, layernorm, gelus, attention_bench);
criterion_main!(benches);
