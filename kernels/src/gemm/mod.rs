//! f32 GEMM, `C <- act(alpha*A*B + beta*C + bias)`, over row and column strides, with B in f32,
//! bf16 or int8.
//!
//! BLIS's five loops (`loops.rs`) around per-ISA micro-kernels (`crate::arch`), with A and B
//! packed into panel layouts (`pack.rs`). A weight matrix can be packed once into a
//! [`PackedB`] and reused by every call; a `PackedB` may hold bf16 (rounded from f32 or taken
//! as stored, `bf16.rs`), multiplied with f32 accumulation, or int8 (quantised per output
//! channel, `int8.rs`), multiplied by int8 kernels on activations quantised per row at each
//! call. Work is split over the caller's
//! rayon pool along the IC and JR loops, never along k, so the result is bitwise the same for
//! every thread count.
//!
//! Not here: bf16 A or C, f16 arithmetic, batched GEMM, complex types.

mod bf16;
pub(crate) mod int8;
mod kernel;
mod loops;
mod loops_int8;
pub(crate) mod pack;

use crate::table::Kernel;
use crate::Isa;
#[cfg(target_arch = "x86_64")]
pub(crate) use bf16::has_avx512bf16;
pub use bf16::{
    bf16_bits_to_f32, bf16_calibration, f16_bits_to_f32, f32_to_bf16_bits, f32_to_bf16_bits_sat,
    Bf16Calibration, Bf16Kernel, Precision, BF16_ENV, DOT_MIN_RATIO,
};
pub use int8::{quantize_weight_i8, quantize_weight_rows, weight_scale_i8, MAX_K as INT8_MAX_K};
pub(crate) use int8::{Int8Kernel, QuantTile, RowQuant};
pub(crate) use kernel::{apply_activation, MicroKernel, Prefetch};
use pack::AlignedBuf;

/// A read-only strided matrix view: element `(i, j)` is `data[i*rs + j*cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    /// Row stride, in elements.
    pub rs: usize,
    /// Column stride, in elements.
    pub cs: usize,
}

/// A writable strided matrix view; strides must not make two elements overlap.
#[derive(Debug)]
pub struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows x cols` view of `data`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// A column-major `rows x cols` view of `data`.
    pub fn col_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            rs: 1,
            cs: rows,
        }
    }

    /// A strided view.
    pub fn strided(data: &'a [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// The transpose, as a view (no copy).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    fn check(&self, name: &str) {
        check_extent(
            name,
            self.data.len(),
            self.rows,
            self.cols,
            self.rs,
            self.cs,
        );
    }
}

impl<'a> MatMut<'a> {
    /// A row-major `rows x cols` view of `data`.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        MatMut {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// A strided view.
    pub fn strided(data: &'a mut [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        MatMut {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    fn check(&self) {
        check_extent("C", self.data.len(), self.rows, self.cols, self.rs, self.cs);
        if self.rows == 0 || self.cols == 0 {
            return;
        }
        if self.rows > 1 && self.cols > 1 {
            let disjoint = (self.cs >= 1 && self.rs >= self.cs * self.cols)
                || (self.rs >= 1 && self.cs >= self.rs * self.rows);
            assert!(
                disjoint,
                "sgemm: C strides (rs={}, cs={}) make elements of a {}x{} matrix overlap",
                self.rs, self.cs, self.rows, self.cols
            );
        } else if self.rows > 1 {
            assert!(
                self.rs >= 1,
                "sgemm: C has {} rows but row stride 0",
                self.rows
            );
        } else if self.cols > 1 {
            assert!(
                self.cs >= 1,
                "sgemm: C has {} columns but column stride 0",
                self.cols
            );
        }
    }
}

fn check_extent(name: &str, len: usize, rows: usize, cols: usize, rs: usize, cs: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    let last = (rows - 1)
        .checked_mul(rs)
        .and_then(|r| (cols - 1).checked_mul(cs).and_then(|c| r.checked_add(c)));
    match last {
        Some(last) if last < len => {}
        _ => panic!(
            "sgemm: {name} is {rows}x{cols} with strides ({rs}, {cs}) but its slice has {len} elements"
        ),
    }
}

/// The elementwise function applied to each output after the bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Activation {
    #[default]
    None,
    /// `x * sigmoid(1.702 x)`, CLIP's activation.
    QuickGelu,
    /// `0.5 x (1 + erf(x / sqrt 2))`.
    Gelu,
}

/// What is done to each output tile after the product: `C <- act(alpha*A*B + beta*C + bias)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    /// One value per column of C (length `n`).
    pub bias: Option<&'a [f32]>,
    pub activation: Activation,
}

impl<'a> Epilogue<'a> {
    /// No bias, no activation.
    pub fn none() -> Self {
        Epilogue::default()
    }

    /// Bias add, no activation.
    pub fn bias(bias: &'a [f32]) -> Self {
        Epilogue {
            bias: Some(bias),
            activation: Activation::None,
        }
    }

    /// Bias add then activation.
    pub fn bias_act(bias: Option<&'a [f32]>, activation: Activation) -> Self {
        Epilogue { bias, activation }
    }
}

/// A right-hand side `B` (`k x n`) packed once into one ISA's micro-panel layout, for reuse by
/// every call (model weights). For a PyTorch `Linear` weight `W` (`[out, in]`, row-major), pack
/// `MatRef::row_major(W, out, in).t()`.
///
/// The element type is a property of the packed B: [`PackedB::new`] keeps f32,
/// [`PackedB::new_bf16`] rounds to bf16, [`PackedB::from_bf16_bits`] takes bf16 as stored.
/// [`sgemm_prepacked`] multiplies either kind by an f32 A into an f32 C.
#[derive(Clone)]
pub struct PackedB {
    isa: Isa,
    kernel: Kernel,
    k: usize,
    n: usize,
    kc: usize,
    nr: usize,
    buf: AlignedBuf,
    /// int8: the column scales and sums.
    i8: Option<Box<int8::I8Cols>>,
}

impl std::fmt::Debug for PackedB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedB")
            .field("isa", &self.isa)
            .field("precision", &self.precision())
            .field("k", &self.k)
            .field("n", &self.n)
            .finish()
    }
}

impl PackedB {
    /// Packs `b` for the kernel set `isa` (panics if the CPU cannot run it).
    pub fn new(isa: Isa, b: MatRef<'_>) -> Self {
        b.check("B");
        assert_runnable(isa);
        let kernel = Kernel::F32(isa);
        let Blocking { kc, nr, .. } = loops::blocking(kernel);
        let mut buf =
            AlignedBuf::zeroed(pack::packed_len::<f32>(b.rows, 1, b.cols.div_ceil(nr), nr));
        pack::pack_b_all::<f32>(buf.view_mut(), &b, kc, 1, nr);
        PackedB {
            isa,
            kernel,
            k: b.rows,
            n: b.cols,
            kc,
            nr,
            buf,
            i8: None,
        }
    }

    /// Packs the columns of several B side by side, as [`PackedB::new`] (or
    /// [`PackedB::new_bf16`], [`PackedB::new_int8`], by `precision`) would pack their
    /// concatenation `[parts[0] | parts[1] | ...]`, without making it: e.g. q, k and v
    /// projections stored as three tensors, packed into one weight. Every part must have the
    /// same number of rows (panics otherwise).
    pub fn new_stacked(isa: Isa, parts: &[MatRef<'_>], precision: Precision) -> Self {
        let k = parts.first().map_or(0, |p| p.rows);
        for p in parts {
            p.check("B");
            assert_eq!(p.rows, k, "stacked parts of B must have the same depth");
        }
        assert_runnable(isa);
        let n = parts.iter().map(|p| p.cols).sum();
        if precision == Precision::Int8 {
            // Column j of the concatenation is column j - start of the part it falls in.
            let mut at = Vec::with_capacity(n);
            for (i, p) in parts.iter().enumerate() {
                at.extend((0..p.cols).map(|c| (i, c)));
            }
            return Self::new_int8_from(isa, (k, n), |kk, j| {
                let (i, c) = at[j];
                parts[i].data[kk * parts[i].rs + c * parts[i].cs]
            });
        }
        let bf16 = precision == Precision::Bf16;
        let kernel = if bf16 {
            Kernel::Bf16(isa, Bf16Kernel::default_for(isa))
        } else {
            Kernel::F32(isa)
        };
        let Blocking { kc, nr, .. } = loops::blocking(kernel);
        let buf = if bf16 {
            pack::pack_b_stacked::<u32>(parts, (k, n), kc, 2, nr)
        } else {
            pack::pack_b_stacked::<f32>(parts, (k, n), kc, 1, nr)
        };
        PackedB {
            isa,
            kernel,
            k,
            n,
            kc,
            nr,
            buf,
            i8: None,
        }
    }

    /// Quantises `b` to s8 per column (an output channel of a `[out, in]` weight: scale
    /// `max|column| / 127`, round to nearest even; `int8.rs`) and packs it for the int8
    /// kernel of `isa` (or the best int8 kernel this CPU runs below it: AVX2 on an AVX-512
    /// CPU without VNNI; the scalar one for portable and NEON). Panics for more than
    /// [`INT8_MAX_K`] rows.
    pub fn new_int8(isa: Isa, b: MatRef<'_>) -> Self {
        b.check("B");
        Self::new_int8_from(isa, (b.rows, b.cols), |k, j| b.data[k * b.rs + j * b.cs])
    }

    /// Packs a `rows x cols` B already quantised to s8 (element `(i, j)` at `q[i*rs + j*cs]`,
    /// e.g. a memory-mapped `[out, in]` weight: `(q, in, out, 1, in)`) with one scale per
    /// column, as [`PackedB::new_int8`] packs what it quantises. Panics if `scales` is not
    /// `cols` long.
    pub fn from_int8(
        isa: Isa,
        q: &[i8],
        scales: &[f32],
        rows: usize,
        cols: usize,
        rs: usize,
        cs: usize,
    ) -> Self {
        check_extent("B", q.len(), rows, cols, rs, cs);
        assert_eq!(
            scales.len(),
            cols,
            "PackedB::from_int8: one scale per column"
        );
        Self::pack_int8(isa, (rows, cols), scales.to_vec(), |k, j| {
            q[k * rs + j * cs]
        })
    }

    /// Quantises the `k x n` B that `get(k, j)` reads, per column, and packs it.
    fn new_int8_from(
        isa: Isa,
        (k, n): (usize, usize),
        get: impl Fn(usize, usize) -> f32 + Sync,
    ) -> Self {
        use rayon::prelude::*;
        let scales: Vec<f32> = (0..n)
            .into_par_iter()
            .with_min_len(16)
            .map(|j| int8::weight_scale_i8((0..k).map(|kk| get(kk, j).abs()).fold(0.0, f32::max)))
            .collect();
        let s = &scales;
        let get = &get;
        Self::pack_int8(isa, (k, n), scales.clone(), move |kk, j| {
            int8::quantize_weight_i8(get(kk, j), s[j])
        })
    }

    /// Packs the s8 `k x n` B that `get(k, j)` reads, with its column scales.
    fn pack_int8(
        isa: Isa,
        (k, n): (usize, usize),
        mut scale: Vec<f32>,
        get: impl Fn(usize, usize) -> i8 + Sync,
    ) -> Self {
        assert_runnable(isa);
        assert!(
            k <= int8::MAX_K,
            "int8 GEMM: depth {k} is more than {}",
            int8::MAX_K
        );
        let kernel = loops::int8_kernel_for(isa);
        let nr = loops::blocking(kernel).nr;
        let (buf, sum) = int8::pack_b_quads((k, n), nr, get);
        scale.resize(n.div_ceil(nr) * nr, 0.0);
        PackedB {
            isa,
            kernel,
            k,
            n,
            kc: k,
            nr,
            buf,
            i8: Some(Box::new(int8::I8Cols { scale, sum })),
        }
    }

    /// Packs `b` for [`Isa::active`].
    pub fn pack(b: MatRef<'_>) -> Self {
        PackedB::new(Isa::active(), b)
    }

    /// Packs `b` rounded to bf16 (to nearest even; NaN stays NaN, see [`f32_to_bf16_bits`])
    /// for the kernel set `isa`, to be multiplied by [`Bf16Kernel::default_for`]`(isa)`.
    pub fn new_bf16(isa: Isa, b: MatRef<'_>) -> Self {
        b.check("B");
        Self::pack_bf16(isa, (b.rows, b.cols), |dst, k0, kc, j0, nr| {
            let cols = nr.min(b.cols - j0);
            pack::pack_b_panel_pairs(dst, kc, nr, cols, |k, j| {
                f32_to_bf16_bits(b.data[(k0 + k) * b.rs + (j0 + j) * b.cs])
            })
        })
    }

    /// Packs a `rows x cols` B stored as bf16 bits (element `(i, j)` at `bits[i*rs + j*cs]`,
    /// e.g. a memory-mapped safetensors tensor) for the kernel set `isa`, without rounding.
    /// For a `[out, in]` weight `W`, `B = W^T` is `(bits, in, out, 1, in)`.
    pub fn from_bf16_bits(
        isa: Isa,
        bits: &[u16],
        rows: usize,
        cols: usize,
        rs: usize,
        cs: usize,
    ) -> Self {
        check_extent("B", bits.len(), rows, cols, rs, cs);
        Self::pack_bf16(isa, (rows, cols), |dst, k0, kc, j0, nr| {
            let c = nr.min(cols - j0);
            pack::pack_b_panel_pairs(dst, kc, nr, c, |k, j| bits[(k0 + k) * rs + (j0 + j) * cs])
        })
    }

    /// Like [`PackedB::from_bf16_bits`] for a B stored as IEEE f16 bits: each value is rounded
    /// to bf16 (to nearest even). bf16 has 3 fewer mantissa bits than f16 and a wider range, so
    /// f16 subnormals stay nonzero and nothing overflows.
    pub fn from_f16_bits(
        isa: Isa,
        bits: &[u16],
        rows: usize,
        cols: usize,
        rs: usize,
        cs: usize,
    ) -> Self {
        check_extent("B", bits.len(), rows, cols, rs, cs);
        Self::pack_bf16(isa, (rows, cols), |dst, k0, kc, j0, nr| {
            let c = nr.min(cols - j0);
            pack::pack_b_panel_pairs(dst, kc, nr, c, |k, j| {
                f32_to_bf16_bits(f16_bits_to_f32(bits[(k0 + k) * rs + (j0 + j) * cs]))
            })
        })
    }

    /// Packs a `k x n` bf16 B with `panel(dst, k0, kc, j0, nr)` filling each panel.
    fn pack_bf16(
        isa: Isa,
        (k, n): (usize, usize),
        panel: impl Fn(&mut [u32], usize, usize, usize, usize) + Sync,
    ) -> Self {
        assert_runnable(isa);
        let kernel = Kernel::Bf16(isa, Bf16Kernel::default_for(isa));
        let Blocking { kc, nr, .. } = loops::blocking(kernel);
        let panels = n.div_ceil(nr);
        let mut buf = AlignedBuf::zeroed(pack::packed_len::<u32>(k, 2, panels, nr));
        pack::pack_b_all_with::<u32>(buf.view_mut(), (k, n), kc, 2, nr, |dst, k0, kc, _, j0| {
            panel(dst, k0, kc, j0, nr)
        });
        PackedB {
            isa,
            kernel,
            k,
            n,
            kc,
            nr,
            buf,
            i8: None,
        }
    }

    /// The same bf16 weights multiplied by the other kind of kernel (the layout is shared).
    /// Panics if B is f32 or `kernel` is not available for this B's kernel set (see
    /// [`Bf16Kernel::is_available`]).
    pub fn with_bf16_kernel(mut self, kernel: Bf16Kernel) -> Self {
        assert_eq!(
            self.precision(),
            Precision::Bf16,
            "PackedB::with_bf16_kernel: B is f32"
        );
        assert!(
            kernel.is_available(self.isa),
            "PackedB::with_bf16_kernel: no {kernel} bf16 kernel for {} on this CPU",
            self.isa
        );
        let new = Kernel::Bf16(self.isa, kernel);
        debug_assert_eq!(
            (loops::blocking(new).kc, loops::blocking(new).nr),
            (self.kc, self.nr)
        );
        self.kernel = new;
        self
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The precision of the packed values.
    pub fn precision(&self) -> Precision {
        match self.kernel {
            Kernel::F32(_) => Precision::F32,
            Kernel::Bf16(..) => Precision::Bf16,
            Kernel::Int8(_) => Precision::Int8,
        }
    }

    /// The kind of bf16 kernel that multiplies this B (`None` for f32).
    pub fn bf16_kernel(&self) -> Option<Bf16Kernel> {
        match self.kernel {
            Kernel::Bf16(_, k) => Some(k),
            Kernel::F32(_) | Kernel::Int8(_) => None,
        }
    }

    /// The register tile and block sizes of the micro-kernel that multiplies this B.
    pub fn blocking(&self) -> Blocking {
        loops::blocking(self.kernel)
    }

    /// Rows of B (the inner dimension).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of B.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Bytes held by the packed panels.
    pub fn size_bytes(&self) -> usize {
        self.buf.capacity_bytes()
    }

    /// The kernel set whose int8 kernel multiplies this B (`None` unless it is int8): the
    /// packing set, or the one it fell back to.
    pub fn int8_kernel_isa(&self) -> Option<Isa> {
        match self.kernel {
            Kernel::Int8(isa) => Some(isa),
            _ => None,
        }
    }

    pub(crate) fn buf(&self) -> &AlignedBuf {
        &self.buf
    }

    /// The column scales and sums of an int8 B (panics for other precisions).
    pub(crate) fn i8_cols(&self) -> &int8::I8Cols {
        self.i8
            .as_deref()
            .expect("an int8 PackedB has its columns' data")
    }

    pub(crate) fn kc(&self) -> usize {
        self.kc
    }

    pub(crate) fn nr(&self) -> usize {
        self.nr
    }
}

/// An ISA's register tile (`mr x nr`) and the block sizes of its loops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    pub mr: usize,
    pub nr: usize,
    pub kc: usize,
    pub mc: usize,
    pub nc: usize,
}

impl Blocking {
    /// The blocking of `isa`'s micro-kernel (known for every ISA on every target where it
    /// can be built; panics for x86_64 kernels on other architectures).
    pub fn of(isa: Isa) -> Self {
        loops::blocking(Kernel::F32(isa))
    }

    /// The blocking of `isa`'s bf16 micro-kernel of kind `kernel` (whether or not this CPU
    /// has it). Both kinds of one ISA share `kc` and `nr`, the packed layout. Panics for a
    /// kind the kernel set does not have (`Dot` exists for `Avx512` and `Scalar` only).
    pub fn of_bf16(isa: Isa, kernel: Bf16Kernel) -> Self {
        loops::blocking(Kernel::Bf16(isa, kernel))
    }
}

fn assert_runnable(isa: Isa) {
    assert!(
        isa.is_available(),
        "sgemm: this CPU cannot run the {isa} kernels"
    );
}

fn check_shapes(a: &MatRef<'_>, k: usize, n: usize, c: &MatMut<'_>, epi: &Epilogue<'_>) {
    a.check("A");
    c.check();
    assert_eq!(
        a.cols, k,
        "sgemm: A is {}x{} but B has {k} rows",
        a.rows, a.cols
    );
    assert_eq!(
        c.rows, a.rows,
        "sgemm: C has {} rows but A has {}",
        c.rows, a.rows
    );
    assert_eq!(c.cols, n, "sgemm: C has {} columns but B has {n}", c.cols);
    if let Some(bias) = epi.bias {
        assert_eq!(
            bias.len(),
            n,
            "sgemm: bias has {} values but C has {n} columns",
            bias.len()
        );
    }
}

/// `C <- act(alpha*A*B + beta*C + bias)` with the kernel set `isa`; B is packed per call.
/// `beta == 0` never reads C (it may hold NaN). Panics on mismatched shapes or short slices.
pub fn sgemm(
    isa: Isa,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
    epi: Epilogue<'_>,
) {
    b.check("B");
    check_shapes(&a, b.rows, b.cols, &c, &epi);
    assert_runnable(isa);
    loops::dispatch(
        Kernel::F32(isa),
        alpha,
        &a,
        loops::BSource::Strided(&b),
        beta,
        c,
        &epi,
    );
}

/// `C <- act(alpha*A*B + beta*C + bias)` with a pre-packed B (f32 or bf16), on the kernel B
/// was packed for.
pub fn sgemm_prepacked(
    alpha: f32,
    a: MatRef<'_>,
    b: &PackedB,
    beta: f32,
    c: MatMut<'_>,
    epi: Epilogue<'_>,
) {
    check_shapes(&a, b.k, b.n, &c, &epi);
    loops::dispatch(
        b.kernel,
        alpha,
        &a,
        loops::BSource::Packed(b),
        beta,
        c,
        &epi,
    );
}
