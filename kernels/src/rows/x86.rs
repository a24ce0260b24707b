//! `#[target_feature]` wrappers of the generic row kernels for AVX2+FMA and AVX-512F.
//!
//! Each wrapper is a one-line `unsafe fn` that instantiates an `#[inline(always)]` body from
//! `generic.rs` with the ISA's lane type, so the whole loop is compiled with the features on.
//! Only the checked dispatch in `rows/mod.rs` (and `attention.rs`) calls them.

macro_rules! row_wrappers {
    ($modname:ident, $V:ty, $feat:literal, $isa:literal) => {
        #[doc = concat!("Row kernels compiled for ", $isa, ".")]
        #[doc = ""]
        #[doc = concat!("Every function here has the same contract: # Safety: the CPU must support ", $isa, ".")]
        pub(crate) mod $modname {
            use crate::rows::generic as g;
            use crate::rows::generic::ElemOp;
            use crate::rows::SoftmaxMask;
            type V = $V;

            /// # Safety
            #[doc = concat!("The CPU must support ", $isa, ".")]
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn map_inplace(op: ElemOp, x: &mut [f32]) {
                g::map_inplace::<V>(op, x)
            }

            /// # Safety
            #[doc = concat!("The CPU must support ", $isa, ".")]
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn scale(x: &mut [f32], s: f32) {
                g::scale::<V>(x, s)
            }

            /// # Safety
            #[doc = concat!("The CPU must support ", $isa, ".")]
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn add(dst: &mut [f32], src: &[f32]) {
                g::add::<V>(dst, src)
            }

            /// # Safety
            #[doc = concat!("The CPU must support ", $isa, ".")]
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn add_bias_rows(x: &mut [f32], bias: &[f32]) {
                g::add_bias_rows::<V>(x, bias)
            }

            /// # Safety
            #[doc = concat!("The CPU must support ", $isa, ".")]
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn softmax_rows(x: &mut [f32], cols: usize, mask: SoftmaxMask<'_>) {
                g::softmax_rows::<V>(x, cols, mask)
            }

            /// # Safety
            #[doc = concat!("The CPU must support ", $isa, ".")]
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn layernorm_rows(
                x: &[f32],
                out: &mut [f32],
                w: &[f32],
                b: &[f32],
                eps: f32,
            ) {
                g::layernorm_rows::<V>(x, out, w, b, eps)
            }

            /// # Safety
            #[doc = concat!("The CPU must support ", $isa, ".")]
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn layernorm_rows_inplace(
                x: &mut [f32],
                w: &[f32],
                b: &[f32],
                eps: f32,
            ) {
                g::layernorm_rows_inplace::<V>(x, w, b, eps)
            }
        }
    };
}

row_wrappers!(avx2, crate::math::avx2::Avx2F32, "avx2,fma", "AVX2 and FMA");
row_wrappers!(
    avx512,
    crate::math::avx512::Avx512F32,
    "avx512f",
    "AVX-512F"
);
