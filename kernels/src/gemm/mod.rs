//! f32 GEMM, `C <- act(alpha*A*B + beta*C + bias)`, over row and column strides.
//!
//! BLIS's five loops (`loops.rs`) around per-ISA micro-kernels (`crate::arch`), with A and B
//! packed into panel layouts (`pack.rs`). A weight matrix can be packed once into a
//! [`PackedB`] and reused by every call. Work is split over the caller's rayon pool along
//! the IC and JR loops, never along k, so the result is bitwise the same for every thread count.
//!
//! Not here: f16/bf16 operands (see `clip-tensor`), batched GEMM, complex types.

mod kernel;
mod loops;
pub(crate) mod pack;

use crate::Isa;
pub(crate) use kernel::MicroKernel;
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
#[derive(Clone)]
pub struct PackedB {
    isa: Isa,
    k: usize,
    n: usize,
    kc: usize,
    nr: usize,
    buf: AlignedBuf,
}

impl std::fmt::Debug for PackedB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedB")
            .field("isa", &self.isa)
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
        let Blocking { kc, nr, .. } = loops::blocking(isa);
        let mut buf = AlignedBuf::zeroed(pack::packed_b_len(b.rows, b.cols, nr));
        pack::pack_b_all(buf.as_mut_slice(), &b, kc, nr);
        PackedB {
            isa,
            k: b.rows,
            n: b.cols,
            kc,
            nr,
            buf,
        }
    }

    /// Packs `b` for [`Isa::active`].
    pub fn pack(b: MatRef<'_>) -> Self {
        PackedB::new(Isa::active(), b)
    }

    pub fn isa(&self) -> Isa {
        self.isa
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

    pub(crate) fn data(&self) -> &[f32] {
        self.buf.as_slice()
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
        loops::blocking(isa)
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
    loops::dispatch(isa, alpha, &a, loops::BSource::Strided(&b), beta, c, &epi);
}

/// `C <- act(alpha*A*B + beta*C + bias)` with a pre-packed B, on the kernel set B was packed for.
pub fn sgemm_prepacked(
    alpha: f32,
    a: MatRef<'_>,
    b: &PackedB,
    beta: f32,
    c: MatMut<'_>,
    epi: Epilogue<'_>,
) {
    check_shapes(&a, b.k, b.n, &c, &epi);
    loops::dispatch(b.isa, alpha, &a, loops::BSource::Packed(b), beta, c, &epi);
}
