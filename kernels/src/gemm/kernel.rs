//! The micro-kernel contract shared by every ISA, and the block sizes of the five loops.
//!
//! A micro-kernel computes one `MR x NR` tile of C from two packed micro-panels:
//!
//! ```text
//!   packed A micro-panel (kc x MR, k-major)     packed B micro-panel (kc x NR, k-major)
//!   k=0: a[0] a[1] .. a[MR-1]                    k=0: b[0] b[1] .. b[NR-1]
//!   k=1: a[MR] ..                                k=1: b[NR] ..
//!   ...                                          ...
//!
//!   acc[r][j] = sum_k a[k*MR + r] * b[k*NR + j]          (k in order 0, 1, .., kc-1)
//!   C[r][j]  <- alpha*acc[r][j] (+ beta*C[r][j] if beta != 0) (+ bias[j] if bias)
//! ```
//!
//! C is row-major inside the tile (`C[r][j]` at `c + r*rs_c + j`); the loops hand edge tiles and
//! column-strided C to the kernel through a contiguous `MR x NR` scratch tile, so every element
//! of C goes through exactly the same arithmetic wherever it sits. `beta == 0` never reads C.
//!
//! bf16 kernels read B (and the dot kernels A too) as bf16 pairs: one `u32` per column (row of
//! A) per pair of k, the even k in the low 16 bits. Depth is counted in k and padded to even:
//!
//! ```text
//!   packed bf16 B micro-panel (kc/2 x NR u32)    conversion kernels: A as f32 (kc x MR, kc even)
//!   p=0: (b[0][0],b[1][0]) .. (b[0][NR-1],b[1][NR-1])    b[2p][j]   = f32(x << 16)
//!   p=1: (b[2][0],b[3][0]) ..                            b[2p+1][j] = f32(x & 0xFFFF_0000)
//!   dot kernels: A as pairs too (kc/2 x MR u32): acc[r][j] += a[2p+1]*b[2p+1]; += a[2p]*b[2p]
//! ```
//!
//! Block sizes (each cuts one loop of BLIS's five; see `docs/design.md`):
//! - `NC` (loop 5, JC): columns of B packed per call when B is not pre-packed;
//! - `KC` (loop 4, PC): depth of one packed block; a `KC x NR` B micro-panel stays in L1 while the
//!   IR loop streams A micro-panels past it;
//! - `MC` (loop 3, IC): rows of the packed A block, `MC x KC`, sized to stay in L2;
//! - `NR` (loop 2, JR) and `MR` (loop 1, IR): the register tile.
//!
//! Not here: the kernels (`arch/`), which kernel each set runs (`table.rs`), the loops.

use super::pack::PanelElem;
use super::Activation;
use crate::Isa;

/// One ISA's micro-kernel and block sizes. The five loops are compiled once per implementor.
///
/// The element types of the packed panels are part of the kernel: `f32` (one k per element) or
/// a bf16 pair (`u32`, two consecutive k of one row of A or one column of B, the lower k in the
/// low half). A kernel over pairs on either side sees k in steps of 2 (`KSTEP`): each KC block
/// is padded with zeros to an even depth in both packed A and packed B.
pub(crate) trait MicroKernel: Sync + 'static {
    /// Element of a packed A micro-panel.
    type A: PanelElem;
    /// Element of a packed B micro-panel.
    type B: PanelElem;
    /// The kernel set this micro-kernel belongs to.
    const ISA: Isa;
    /// Rows of the register tile (loop 1, IR).
    const MR: usize;
    /// Columns of the register tile (loop 2, JR).
    const NR: usize;
    /// Depth of a packed block (loop 4, PC); a multiple of `KSTEP`.
    const KC: usize;
    /// Rows of a packed A block (loop 3, IC); a multiple of `MR`.
    const MC: usize;
    /// Columns of B packed per JC step when B is not pre-packed (loop 5); a multiple of `NR`.
    const NC: usize;
    /// The kernel the loops run on a B micro-panel widened by [`MicroKernel::widen_b`]: the f32
    /// twin of a bf16 conversion kernel (same A, tile and arithmetic), `Self` otherwise.
    type Wide: MicroKernel<A = Self::A>;
    /// Whether the loops widen each B micro-panel once per task and panel and run `Wide` on
    /// it, when the task has at least [`WIDEN_MIN_TILES`] row tiles (the in-kernel widening is
    /// then repeated per tile). Either way the FMAs are the same, so the result does not
    /// depend on the choice.
    const WIDEN: bool = false;
    /// Whether this CPU runs the kernel: its set's check, and for a kernel that needs more
    /// than its set (AVX512-BF16) that too.
    fn is_available() -> bool {
        Self::ISA.is_available()
    }
    /// The depth granularity: 1 for f32 kernels, 2 when either panel holds bf16 pairs.
    const KSTEP: usize = if <Self::A as PanelElem>::K_PER > <Self::B as PanelElem>::K_PER {
        <Self::A as PanelElem>::K_PER
    } else {
        <Self::B as PanelElem>::K_PER
    };

    /// Computes one full tile; see the module docs for the arithmetic.
    ///
    /// # Safety
    /// `kc` is a multiple of `KSTEP`; `a` points to `kc/A::K_PER*MR` readable elements, `b` to
    /// `kc/B::K_PER*NR`; `c` to an `MR x NR` row-major tile with row stride `rs_c`, readable
    /// (when `beta != 0`) and writable; `bias` is null or points to `NR` readable floats. The
    /// CPU supports the kernel's instructions.
    #[allow(clippy::too_many_arguments)]
    unsafe fn ukernel(
        kc: usize,
        a: *const Self::A,
        b: *const Self::B,
        c: *mut f32,
        rs_c: usize,
        alpha: f32,
        beta: f32,
        bias: *const f32,
    );

    /// Widens a packed B micro-panel of padded depth `kc` into `Wide`'s layout (`dst` holds
    /// `kc*NR` elements). Only called when `WIDEN`.
    ///
    /// Panics unless `src` holds `kc/B::K_PER*NR` elements and `dst` `kc*NR`.
    ///
    /// # Safety
    /// The CPU runs the kernel ([`MicroKernel::is_available`]).
    unsafe fn widen_b(src: &[Self::B], dst: &mut [<Self::Wide as MicroKernel>::B], kc: usize) {
        let _ = (src, dst, kc);
        unreachable!("widen_b of a kernel that does not widen");
    }

    /// Packs one full micro-panel of A from `src`, MR rows of a unit-column-stride A with row
    /// stride `rs`, starting at the panel's first row and depth: `kc` k into `dst` (k-major,
    /// as the generic packer lays it out). Returns `false` when the kernel has no packer of
    /// its own for these arguments (the generic one then runs); both give the same bits.
    ///
    /// Panics unless `src` holds `(MR-1)*rs + kc` floats and `dst` `kc/A::K_PER*MR` elements;
    /// `kc` is a multiple of `KSTEP`.
    ///
    /// # Safety
    /// The CPU runs the kernel ([`MicroKernel::is_available`]).
    unsafe fn pack_a_rows(dst: &mut [Self::A], src: &[f32], rs: usize, kc: usize) -> bool {
        let _ = (dst, src, rs, kc);
        false
    }

    /// As [`MicroKernel::ukernel`], with the prefetch hints of [`Prefetch`], then `act` on
    /// every element of the tile. The default applies `act` to each tile row with the row
    /// kernels' vector function of `Self::ISA` ([`crate::rows::quick_gelu`],
    /// [`crate::rows::gelu`]); a kernel that applies it in registers before its stores must
    /// use the same function on the same lanes, so the bits are the same either way.
    ///
    /// # Safety
    /// As [`MicroKernel::ukernel`].
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn ukernel_pf(
        kc: usize,
        a: *const Self::A,
        b: *const Self::B,
        c: *mut f32,
        rs_c: usize,
        alpha: f32,
        beta: f32,
        bias: *const f32,
        act: Activation,
        _pf: Prefetch,
    ) {
        // SAFETY: forwarded contract.
        unsafe { Self::ukernel(kc, a, b, c, rs_c, alpha, beta, bias) };
        if act != Activation::None {
            for r in 0..Self::MR {
                // SAFETY: row r of the tile is NR writable floats at c + r*rs_c (contract).
                let row = unsafe { std::slice::from_raw_parts_mut(c.add(r * rs_c), Self::NR) };
                apply_activation(Self::ISA, act, row);
            }
        }
    }
}

/// The activation of the epilogue, on one tile row: the same vectorised functions as
/// [`crate::rows::gelu`] and [`crate::rows::quick_gelu`], so a fused and an unfused activation
/// give the same bits.
pub(crate) fn apply_activation(isa: Isa, act: Activation, row: &mut [f32]) {
    match act {
        Activation::None => {}
        Activation::QuickGelu => crate::rows::quick_gelu(isa, row),
        Activation::Gelu => crate::rows::gelu(isa, row),
    }
}

/// Prefetch hints for one tile; hints only, so the addresses need not be dereferenceable.
/// Kernels without prefetching ignore them (all but the AVX-512 ones, hence unread elsewhere).
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct Prefetch {
    /// This tile's share of the next B micro-panel, brought into L2 over the k loop (one
    /// `prefetcht1` per k step across `next_bytes`); null for none.
    pub next: *const u8,
    pub next_bytes: usize,
    /// The tile is the first of its task to read this B micro-panel, which then comes from
    /// memory or L3, not L2: the kernel also prefetches the panel into L1 a fixed distance
    /// ahead of its loads.
    pub stream_b: bool,
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
impl Prefetch {
    /// No hints.
    pub const NONE: Prefetch = Prefetch {
        next: std::ptr::null(),
        next_bytes: 0,
        stream_b: false,
    };
}

/// Row tiles of a task from which a `WIDEN` kernel's B panels are widened once by the loops:
/// storing the widened panel costs about as much as widening it in 8-10 tiles, so below that
/// widening in every tile is cheaper (measured on AVX-512: `docs/performance.md`).
pub(crate) const WIDEN_MIN_TILES: usize = 12;

/// The largest `MR x NR` of any micro-kernel, for the edge-tile scratch.
pub(crate) const MAX_TILE: usize = 16 * 32;
/// The largest `NR` of any micro-kernel.
pub(crate) const MAX_NR: usize = 32;
