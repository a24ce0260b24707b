//! Small throughput loops that measure this machine's fp32 FMA peak, its `vdpbf16ps` peak
//! where the CPU has AVX512-BF16, and the peak of the int8 kernels' instruction (`vpdpbusd`
//! with AVX512-VNNI, `vpmaddwd` + `vpaddd` on AVX2), so GEMM figures can be read as a
//! fraction of them. Each
//! thread runs independent chains on registers (no memory traffic); the result is FLOP/s over
//! all threads. [`bf16_dot_and_fma_rates`] is the one-thread measurement the bf16 kernel
//! choice calibrates on.
//!
//! Not here: the GEMM's figures (`clip bench gemm`), the choice of kernel made from these
//! rates (`gemm/bf16.rs`).

use crate::Isa;
use std::time::Instant;

/// Measures the fp32 FMA peak of `isa` on the current rayon pool (every thread runs the loop
/// at once), in GFLOP/s. `iters` of ~10^7 take a few milliseconds.
pub fn fma_peak_gflops(isa: Isa, iters: u64) -> f64 {
    assert!(
        isa.is_available(),
        "fma_peak_gflops: this CPU cannot run {isa}"
    );
    let start = Instant::now();
    let flops: f64 = rayon::broadcast(|_| {
        let (flops_per_iter, sink) = run(isa, iters);
        std::hint::black_box(sink);
        flops_per_iter * iters as f64
    })
    .into_iter()
    .sum();
    let secs = start.elapsed().as_secs_f64();
    flops / secs / 1e9
}

/// Measures the bf16 dot-product peak (`vdpbf16ps zmm`, 32 lanes x 2 products = 64 FLOP per
/// instruction) on the current rayon pool, in GFLOP/s; `None` without AVX512-BF16.
pub fn bf16_dot_peak_gflops(iters: u64) -> Option<f64> {
    if !crate::gemm::Bf16Kernel::Dot.is_available(Isa::Avx512) {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let start = Instant::now();
        let flops: f64 = rayon::broadcast(|_| {
            // SAFETY: AVX-512F and AVX512-BF16 were detected above.
            let sink = unsafe { x86::dot_loop_avx512bf16(iters) };
            std::hint::black_box(sink);
            20.0 * 64.0 * iters as f64
        })
        .into_iter()
        .sum();
        Some(flops / start.elapsed().as_secs_f64() / 1e9)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = iters;
        None
    }
}

/// The `vdpbf16ps` and fp32 FMA rates of the calling thread's core, in GFLOP/s, as
/// `(dot, fma)`: each loop runs `rounds` times of `iters` iterations (alternating, after one
/// untimed FMA run that wakes the vector units up), and the fastest run of each counts, since
/// a run the OS preempted is only slower. Both are timed on the same core within a few
/// milliseconds, so their ratio holds on a loaded machine too. `None` without AVX512-BF16.
pub fn bf16_dot_and_fma_rates(iters: u64, rounds: usize) -> Option<(f64, f64)> {
    if !crate::gemm::Bf16Kernel::Dot.is_available(Isa::Avx512) {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let time = |f: &dyn Fn() -> f32| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64()
        };
        // SAFETY: AVX-512F was detected above (it comes with the dot kernel's availability).
        // (`black_box`: with a constant count the loop could be folded away.)
        let fma = || unsafe { x86::fma_loop_avx512(std::hint::black_box(iters)) };
        // SAFETY: AVX-512F and AVX512-BF16 were detected above.
        let dot = || unsafe { x86::dot_loop_avx512bf16(std::hint::black_box(iters)) };
        time(&fma);
        let (mut best_fma, mut best_dot) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..rounds.max(1) {
            best_fma = best_fma.min(time(&fma));
            best_dot = best_dot.min(time(&dot));
        }
        let gflops = |flop_per_iter: f64, secs: f64| flop_per_iter * iters as f64 / secs / 1e9;
        Some((
            gflops(20.0 * 64.0, best_dot),
            gflops(16.0 * 16.0 * 2.0, best_fma),
        ))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (iters, rounds);
        None
    }
}

/// Measures the int8 peak of `isa`'s int8 kernel on the current rayon pool (every thread runs
/// the loop at once), in GOP/s (a multiply-add is 2 operations, as for FLOP): `vpdpbusd zmm`
/// (16 lanes x 4 u8 x s8, 128 operations) for AVX-512 on a CPU with VNNI, `vpmaddwd ymm` and
/// the `vpaddd` that accumulates it (16 multiply-adds, 32 operations) for AVX2; `None` for
/// other sets and for AVX-512 without VNNI (whose int8 GEMM runs the AVX2 kernel).
pub fn int8_peak_gops(isa: Isa, iters: u64) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        let (ops_per_iter, run): (f64, fn(u64) -> i32) = match isa {
            Isa::Avx512 if crate::arch::x86_64::avx512vnni::has_avx512vnni() => {
                // SAFETY: AVX-512F, BW and VNNI were detected just above.
                (20.0 * 128.0, |n| unsafe { x86::vnni_loop_avx512(n) })
            }
            Isa::Avx2 if isa.is_available() => {
                // SAFETY: AVX2 was detected just above.
                (12.0 * 32.0, |n| unsafe { x86::madd_loop_avx2(n) })
            }
            _ => return None,
        };
        let start = Instant::now();
        let ops: f64 = rayon::broadcast(|_| {
            std::hint::black_box(run(std::hint::black_box(iters)));
            ops_per_iter * iters as f64
        })
        .into_iter()
        .sum();
        Some(ops / start.elapsed().as_secs_f64() / 1e9)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, iters);
        None
    }
}

/// Runs the loop; returns (FLOP per iteration, a value that depends on the work).
fn run(isa: Isa, iters: u64) -> (f64, f32) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: availability of AVX-512F was asserted by the caller.
        Isa::Avx512 => (16.0 * 16.0 * 2.0, unsafe { x86::fma_loop_avx512(iters) }),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: availability of AVX2+FMA was asserted by the caller.
        Isa::Avx2 => (12.0 * 8.0 * 2.0, unsafe { x86::fma_loop_avx2(iters) }),
        _ => {
            let mut acc = [1.0f32; 8];
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    *a = a.mul_add(0.999_999, 1e-7);
                }
            }
            (8.0 * 2.0, acc.iter().sum())
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    /// 16 independent zmm FMA chains per iteration.
    #[target_feature(enable = "avx512f")]
    pub(super) fn fma_loop_avx512(iters: u64) -> f32 {
        let m = _mm512_set1_ps(0.999_999);
        let a = _mm512_set1_ps(1e-7);
        let mut acc = [_mm512_set1_ps(1.0); 16];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, m, a);
            }
        }
        let mut s = _mm512_setzero_ps();
        for v in acc {
            s = _mm512_add_ps(s, v);
        }
        _mm512_reduce_add_ps(s)
    }

    /// 20 independent zmm `vdpbf16ps` chains per iteration (as many as the dot micro-kernel
    /// keeps), on values that stay normal.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) fn dot_loop_avx512bf16(iters: u64) -> f32 {
        // Pairs (1.0, 1.0) and (2^-7, 2^-7) in bf16.
        let a = _mm512_set1_epi32(std::hint::black_box(0x3F80_3F80u32) as i32);
        let b = _mm512_set1_epi32(std::hint::black_box(0x3C00_3C00u32) as i32);
        // SAFETY: `__m512i` and `__m512bh` are both 64 bytes of plain bits.
        let (a, b) = unsafe {
            (
                core::mem::transmute::<__m512i, __m512bh>(a),
                core::mem::transmute::<__m512i, __m512bh>(b),
            )
        };
        let mut acc = [_mm512_setzero_ps(); 20];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm512_dpbf16_ps(*v, a, b);
            }
        }
        let mut s = _mm512_setzero_ps();
        for v in acc {
            s = _mm512_add_ps(s, v);
        }
        _mm512_reduce_add_ps(s)
    }

    /// 20 independent zmm `vpdpbusd` chains per iteration (as many as the int8 kernel keeps).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn vnni_loop_avx512(iters: u64) -> i32 {
        let a = _mm512_set1_epi32(std::hint::black_box(0x0101_0101));
        let b = _mm512_set1_epi32(std::hint::black_box(0x01FF_01FF));
        let mut acc = [_mm512_setzero_si512(); 20];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm512_dpbusd_epi32(*v, a, b);
            }
        }
        let mut s = _mm512_setzero_si512();
        for v in acc {
            s = _mm512_add_epi32(s, v);
        }
        _mm512_reduce_add_epi32(s)
    }

    /// 12 independent ymm `vpmaddwd` + `vpaddd` chains per iteration (the AVX2 int8 kernel's
    /// pair).
    #[target_feature(enable = "avx2")]
    pub(super) fn madd_loop_avx2(iters: u64) -> i32 {
        let a = _mm256_set1_epi32(std::hint::black_box(0x0001_0002));
        let b = _mm256_set1_epi32(std::hint::black_box(0xFFFF_0001u32 as i32));
        let mut acc = [_mm256_setzero_si256(); 12];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                // (Chained through the product so that it stays in the loop; the values are
                // immaterial.)
                *v = _mm256_add_epi32(_mm256_madd_epi16(*v, b), a);
            }
        }
        let mut s = _mm256_setzero_si256();
        for v in acc {
            s = _mm256_add_epi32(s, v);
        }
        let mut out = [0i32; 8];
        // SAFETY: `out` holds 8 i32.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), s) };
        out.iter().fold(0, |x, &y| x.wrapping_add(y))
    }

    /// 12 independent ymm FMA chains per iteration.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn fma_loop_avx2(iters: u64) -> f32 {
        let m = _mm256_set1_ps(0.999_999);
        let a = _mm256_set1_ps(1e-7);
        let mut acc = [_mm256_set1_ps(1.0); 12];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, m, a);
            }
        }
        let mut out = [0.0f32; 8];
        let mut s = _mm256_setzero_ps();
        for v in acc {
            s = _mm256_add_ps(s, v);
        }
        // SAFETY: `out` holds 8 floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
        out.iter().sum()
    }
}
