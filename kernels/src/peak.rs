//! A small FMA-throughput loop that measures this machine's fp32 peak, so GEMM figures can be
//! read as a fraction of it. Each thread runs independent chains of fused multiply-adds on
//! registers (no memory traffic); the result is FLOP/s over all threads.

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
    ///
    /// # Safety
    /// The CPU supports AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fma_loop_avx512(iters: u64) -> f32 {
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

    /// 12 independent ymm FMA chains per iteration.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fma_loop_avx2(iters: u64) -> f32 {
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
