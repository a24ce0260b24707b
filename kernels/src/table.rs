//! The kernel-set table: for each [`Isa`], which GEMM micro-kernels, row kernels and attention
//! it runs, and what it falls back to where it has none of its own. The one place an `Isa`
//! becomes code.
//!
//! ```text
//! set       f32 GEMM             bf16 convert        bf16 dot               int8                  lanes (rows, attention)
//! scalar    Scalar 4x8           ScalarBf16 4x8      ScalarBf16Dot (model)  ScalarI8 4x8          f32
//! portable  Portable 4x16        PortableBf16 4x16   -                      scalar's              wide::f32x8
//! avx2      Avx2 6x16            Avx2Bf16 6x16       -                      Avx2I8 6x8            Avx2F32 (__m256)
//! avx512    Avx512 10x32 (+11)   Avx512Bf16 10x32    Avx512Bf16Dot (+BF16)  Avx512Vnni 10x32      Avx512F32 (__m512)
//!                                                                           (+VNNI; else avx2's)
//! neon      Neon 6x16            portable's          -                      scalar's              portable's
//! ```
//!
//! Each row is an `impl KernelSet` below; a fallback names the other set's entry
//! (`<Portable as KernelSet>::Lanes`), so it is declared once. Every call runs through
//! [`run`]: the CPU check, then the one `unsafe` call into a function compiled with the
//! set's target features, where code generic over the set (rows, attention, the GEMM's
//! choice of micro-kernel) is instantiated. [`describe`] only looks up the types (block
//! sizes, availability), for every set built on this target.
//!
//! A new kind of kernel is one more associated type of [`KernelSet`] (a [`Slot`] where some
//! sets lack it), one line in each impl, and one arm where [`with_kernel`] picks a column; the
//! int8 kernels, whose contract differs from [`MicroKernel`]'s (quantised panels, a
//! dequantising epilogue), are visited by [`KernelVisitor::visit_int8`].
//!
//! Not here: the kernels (`arch/`, `rows/`, `attention.rs`, `math/`), CPU detection and
//! `CLIP_ISA` (`dispatch.rs`), the loops (`gemm/loops.rs`).

use crate::arch::{aarch64, portable, scalar};
use crate::gemm::{Bf16Kernel, Int8Kernel, MicroKernel};
use crate::math::SimdF32;
use crate::Isa;
use std::marker::PhantomData;

/// One kernel set: the types each kind of kernel of an [`Isa`] resolves to.
pub(crate) trait KernelSet: 'static {
    /// The public name of the set.
    const ISA: Isa;
    /// f32 GEMM micro-kernel.
    type F32: MicroKernel<A = f32, B = f32>;
    /// bf16 GEMM with f32 A, each bf16 pair of B widened to f32 ([`Bf16Kernel::Convert`]).
    type Bf16Convert: MicroKernel<A = f32, B = u32>;
    /// bf16 GEMM with A rounded to bf16 too ([`Bf16Kernel::Dot`]), or [`Lacks`].
    type Bf16Dot: Slot;
    /// int8 GEMM (u8 activations quantised per row, s8 weights, i32 accumulation).
    type Int8: Int8Kernel;
    /// The lane type of the row kernels (`rows::`) and of attention.
    type Lanes: SimdF32;

    /// Calls `v` with the f32 micro-kernel for a product of `m` rows: [`KernelSet::F32`],
    /// unless the set has another tile that pads `m` less.
    #[inline(always)]
    fn f32_for_rows<V: KernelVisitor>(m: usize, v: V) -> V::Out {
        let _ = m;
        v.visit::<Self::F32>()
    }
}

/// The reference: plain Rust, the test oracle.
pub(crate) struct Scalar;

impl KernelSet for Scalar {
    const ISA: Isa = Isa::Scalar;
    type F32 = scalar::Scalar;
    type Bf16Convert = scalar::ScalarBf16;
    type Bf16Dot = Has<scalar::ScalarBf16Dot>;
    type Int8 = scalar::ScalarI8;
    type Lanes = f32;
}

/// `wide` SIMD, any target.
pub(crate) struct Portable;

impl KernelSet for Portable {
    const ISA: Isa = Isa::Portable;
    type F32 = portable::Portable;
    type Bf16Convert = portable::PortableBf16;
    type Bf16Dot = Lacks;
    type Int8 = <Scalar as KernelSet>::Int8;
    type Lanes = wide::f32x8;
}

/// x86_64 AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx2;

#[cfg(target_arch = "x86_64")]
impl KernelSet for Avx2 {
    const ISA: Isa = Isa::Avx2;
    type F32 = crate::arch::x86_64::avx2::Avx2;
    type Bf16Convert = crate::arch::x86_64::avx2::Avx2Bf16;
    type Bf16Dot = Lacks;
    type Int8 = crate::arch::x86_64::avx2_int8::Avx2I8;
    type Lanes = crate::math::avx2::Avx2F32;
}

/// x86_64 AVX-512F (the dot kernel also needs AVX512-BF16, which it checks itself).
#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx512;

#[cfg(target_arch = "x86_64")]
impl KernelSet for Avx512 {
    const ISA: Isa = Isa::Avx512;
    type F32 = crate::arch::x86_64::avx512::Avx512;
    type Bf16Convert = crate::arch::x86_64::avx512::Avx512Bf16;
    type Bf16Dot = Has<crate::arch::x86_64::avx512bf16::Avx512Bf16Dot>;
    // Needs AVX512-VNNI, which it checks itself (without it, `PackedB` falls back to avx2's).
    type Int8 = crate::arch::x86_64::avx512vnni::Avx512Vnni;
    type Lanes = crate::math::avx512::Avx512F32;

    /// The 11-row tile when it pads `m` less (77 text tokens: 7 tiles, not 8); the result is
    /// the same bits either way.
    #[inline(always)]
    fn f32_for_rows<V: KernelVisitor>(m: usize, v: V) -> V::Out {
        use crate::arch::x86_64::avx512::{use_r11, Avx512R11};
        if use_r11(m) {
            v.visit::<Avx512R11>()
        } else {
            v.visit::<Self::F32>()
        }
    }
}

/// aarch64 NEON. Declared on every target, so its block sizes answer everywhere
/// (`Blocking::of(Isa::Neon)`); it only runs on aarch64.
pub(crate) struct Neon;

impl KernelSet for Neon {
    const ISA: Isa = Isa::Neon;
    type F32 = aarch64::neon::Neon;
    // No NEON kernels of these kinds yet: the portable ones (`wide` lowers to NEON there).
    type Bf16Convert = <Portable as KernelSet>::Bf16Convert;
    type Bf16Dot = Lacks;
    type Int8 = <Scalar as KernelSet>::Int8;
    type Lanes = <Portable as KernelSet>::Lanes;
}

/// An entry of the table that some sets lack: [`Has<K>`] or [`Lacks`].
pub(crate) trait Slot {
    /// `Some(v.visit::<K>())`, or `None` for a set without this kind of kernel.
    fn visit<V: KernelVisitor>(v: V) -> Option<V::Out>;
}

/// The set has the micro-kernel `K` of this kind.
pub(crate) struct Has<K>(PhantomData<K>);

impl<K: MicroKernel> Slot for Has<K> {
    #[inline(always)]
    fn visit<V: KernelVisitor>(v: V) -> Option<V::Out> {
        Some(v.visit::<K>())
    }
}

/// The set has no kernel of this kind.
pub(crate) enum Lacks {}

impl Slot for Lacks {
    #[inline(always)]
    fn visit<V: KernelVisitor>(_: V) -> Option<V::Out> {
        None
    }
}

/// Something to do with a kernel set, chosen at run time by [`run`] or [`visit_set`].
///
/// Implementations of `visit` are `#[inline(always)]`, so that under [`run`] the generic code
/// they call is compiled inside the set's target-feature function (a closure or an
/// out-of-line call would be compiled without the features: see `math::SimdF32`).
pub(crate) trait SetVisitor {
    type Out;
    fn visit<S: KernelSet>(self) -> Self::Out;
}

/// Something to do with a micro-kernel type, chosen at run time by [`with_kernel`]: an f32 or
/// bf16 [`MicroKernel`], or an [`Int8Kernel`].
pub(crate) trait KernelVisitor {
    type Out;
    fn visit<K: MicroKernel>(self) -> Self::Out;
    fn visit_int8<K: Int8Kernel>(self) -> Self::Out;
}

/// A GEMM micro-kernel by name: a kernel set and a column of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    F32(Isa),
    Bf16(Isa, Bf16Kernel),
    Int8(Isa),
}

impl Kernel {
    pub(crate) fn isa(self) -> Isa {
        match self {
            Kernel::F32(isa) | Kernel::Bf16(isa, _) | Kernel::Int8(isa) => isa,
        }
    }
}

/// Calls `v.visit::<K>()` with the micro-kernel type `kernel` names in the set `S`; with
/// `rows = Some(m)`, the f32 tile for `m` rows ([`KernelSet::f32_for_rows`]). `None` where
/// the set lacks that kind.
#[inline(always)]
pub(crate) fn with_kernel<S: KernelSet, V: KernelVisitor>(
    kernel: Kernel,
    rows: Option<usize>,
    v: V,
) -> Option<V::Out> {
    debug_assert_eq!(kernel.isa(), S::ISA);
    match (kernel, rows) {
        (Kernel::F32(_), Some(m)) => Some(S::f32_for_rows(m, v)),
        (Kernel::F32(_), None) => Some(v.visit::<S::F32>()),
        (Kernel::Bf16(_, Bf16Kernel::Convert), _) => Some(v.visit::<S::Bf16Convert>()),
        (Kernel::Bf16(_, Bf16Kernel::Dot), _) => S::Bf16Dot::visit(v),
        (Kernel::Int8(_), _) => Some(v.visit_int8::<S::Int8>()),
    }
}

/// Looks up the micro-kernel `kernel` names, for what needs only its type (block sizes,
/// availability): no kernel code runs here. `None` where the set lacks that kind. Panics for
/// the x86_64 sets on other targets, which are not built there.
pub(crate) fn describe<V: KernelVisitor>(kernel: Kernel, v: V) -> Option<V::Out> {
    struct Pick<V>(Kernel, V);
    impl<V: KernelVisitor> SetVisitor for Pick<V> {
        type Out = Option<V::Out>;
        #[inline(always)]
        fn visit<S: KernelSet>(self) -> Self::Out {
            with_kernel::<S, V>(self.0, None, self.1)
        }
    }
    visit_set(kernel.isa(), Pick(kernel, v))
}

/// Calls `v.visit::<S>()` with the set `isa` names, without checking the CPU or entering its
/// target features: for looking up types only (see [`describe`]); code that computes goes
/// through [`run`].
fn visit_set<V: SetVisitor>(isa: Isa, v: V) -> V::Out {
    match isa {
        Isa::Scalar => v.visit::<Scalar>(),
        Isa::Portable => v.visit::<Portable>(),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => v.visit::<Avx2>(),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => v.visit::<Avx512>(),
        Isa::Neon => v.visit::<Neon>(),
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 => panic!("the {isa} kernels are not built for this target"),
    }
}

/// Panics unless the CPU can run `isa`: the check in front of [`run`]'s `unsafe` call.
#[inline]
pub(crate) fn assert_available(isa: Isa) {
    assert!(
        isa.is_available(),
        "kernel set {isa} is not available on this CPU"
    );
}

/// Runs `v.visit::<S>()` for the set `isa` names, inside a function compiled with the set's
/// target features, after checking that the CPU has them (panics otherwise).
#[inline]
pub(crate) fn run<V: SetVisitor>(isa: Isa, v: V) -> V::Out {
    assert_available(isa);
    match isa {
        Isa::Scalar => v.visit::<Scalar>(),
        Isa::Portable => v.visit::<Portable>(),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `assert_available` checked that this CPU has AVX2 and FMA.
        Isa::Avx2 => unsafe { x86::with_avx2(v) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `assert_available` checked that this CPU has AVX-512F.
        Isa::Avx512 => unsafe { x86::with_avx512(v) },
        // NEON is part of the aarch64 baseline: no features to turn on.
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => v.visit::<Neon>(),
        #[allow(unreachable_patterns)]
        _ => unreachable!("assert_available refuses {isa} on this target"),
    }
}

/// The sets' target-feature functions: safe to call where the features are known, and from
/// [`run`] after its check.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Avx2, Avx512, SetVisitor};

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn with_avx2<V: SetVisitor>(v: V) -> V::Out {
        v.visit::<Avx2>()
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn with_avx512<V: SetVisitor>(v: V) -> V::Out {
        v.visit::<Avx512>()
    }
}
