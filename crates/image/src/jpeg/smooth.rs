//! Block smoothing of incomplete progressive files, as libjpeg-turbo does it by default
//! (`do_block_smoothing`, `decompress_smooth_data` in `jdcoefct.c`), so that a progressive
//! file that stops before its last scan decodes as Pillow decodes it.
//!
//! When some of the first 9 AC coefficients (zigzag 1-9) of a component are not known to
//! full precision after the last scan, each block's DC and its 24 neighbours' DCs (a 5x5
//! window) estimate those that are still zero. If no AC data came at all, the DC itself
//! is smoothed too and 9 coefficients are estimated ("DC interpolation"), else 5 with a
//! simpler kernel. An estimate never exceeds what the missing bits could hold.
//!
//! The window's edges follow libjpeg-turbo exactly: columns are clamped to the real blocks;
//! rows are clamped by its iMCU-row arithmetic, which can reach the MCU padding rows (DC 0
//! where nothing was coded) and, in a last iMCU row shorter than the sampling factor,
//! clamps early.
//!
//! Not here: the IDCT (`idct.rs`), what the scans record (`scan.rs` sets `coef_bits`).

use super::Component;

/// Coefficients smoothing can estimate: zigzag 1-9, in natural order.
const NATURAL: [usize; 10] = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24];

/// A 5x5 kernel over the DC window, rows then columns, offsets -2..=2.
type Kernel = [[i32; 5]; 5];

/// Kernels per zigzag coefficient 1-9 with DC interpolation (no AC data at all), and
/// the DC's own; from `jdcoefct.c`'s expressions.
const WITH_DC: [Kernel; 10] = [
    [
        [-2, -6, -8, -6, -2],
        [-6, 6, 42, 6, -6],
        [-8, 42, 152, 42, -8],
        [-6, 6, 42, 6, -6],
        [-2, -6, -8, -6, -2],
    ],
    [
        [-1, -1, 0, 1, 1],
        [-3, 13, 0, -13, 3],
        [-3, 38, 0, -38, 3],
        [-3, 13, 0, -13, 3],
        [-1, -1, 0, 1, 1],
    ],
    [
        [-1, -3, -3, -3, -1],
        [-1, 13, 38, 13, -1],
        [0, 0, 0, 0, 0],
        [1, -13, -38, -13, 1],
        [1, 3, 3, 3, 1],
    ],
    [
        [0, 0, 1, 0, 0],
        [0, 2, 7, 2, 0],
        [0, -5, -14, -5, 0],
        [0, 2, 7, 2, 0],
        [0, 0, 1, 0, 0],
    ],
    [
        [-1, 0, 0, 0, 1],
        [0, 9, 0, -9, 0],
        [0, 0, 0, 0, 0],
        [0, -9, 0, 9, 0],
        [1, 0, 0, 0, -1],
    ],
    [
        [0, 0, 0, 0, 0],
        [0, 2, -5, 2, 0],
        [1, 7, -14, 7, 1],
        [0, 2, -5, 2, 0],
        [0, 0, 0, 0, 0],
    ],
    [
        [0, 0, 0, 0, 0],
        [0, 1, 0, -1, 0],
        [0, 2, 0, -2, 0],
        [0, 1, 0, -1, 0],
        [0, 0, 0, 0, 0],
    ],
    [
        [0, 0, 0, 0, 0],
        [0, 1, -3, 1, 0],
        [0, 0, 0, 0, 0],
        [0, -1, 3, -1, 0],
        [0, 0, 0, 0, 0],
    ],
    [
        [0, 0, 0, 0, 0],
        [0, 1, 0, -1, 0],
        [0, -3, 0, 3, 0],
        [0, 1, 0, -1, 0],
        [0, 0, 0, 0, 0],
    ],
    [
        [0, 0, 0, 0, 0],
        [0, 1, 2, 1, 0],
        [0, 0, 0, 0, 0],
        [0, -1, -2, -1, 0],
        [0, 0, 0, 0, 0],
    ],
];

/// Kernels for zigzag 1-5 when some AC data came (the K.8 estimate on a 5x5 window).
const WITHOUT_DC: [Kernel; 5] = [
    [
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [-7, 50, 0, -50, 7],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ],
    [
        [0, 0, -7, 0, 0],
        [0, 0, 50, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, -50, 0, 0],
        [0, 0, 7, 0, 0],
    ],
    [
        [0, 0, -1, 0, 0],
        [0, 0, 13, 0, 0],
        [0, 0, -24, 0, 0],
        [0, 0, 13, 0, 0],
        [0, 0, -1, 0, 0],
    ],
    [
        [0, -1, 0, 1, 0],
        [-1, 10, 0, -10, 1],
        [0, 0, 0, 0, 0],
        [1, -10, 0, 10, -1],
        [0, 1, 0, -1, 0],
    ],
    [
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [-1, 13, -24, 13, -1],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ],
];

/// libjpeg-turbo's `smoothing_ok`: every component has had a DC scan and a quantisation
/// table without zeros where the estimates divide, and some component still lacks bits
/// of a coefficient among zigzag 1-9.
pub(crate) fn smoothing_ok(comps: &[Component]) -> bool {
    let mut useful = false;
    for c in comps {
        let Some(q) = c.quant else { return false };
        if NATURAL.iter().any(|&n| q[n] == 0) || c.coef_bits[0] < 0 {
            return false;
        }
        useful |= c.coef_bits[1..].iter().any(|&b| b != 0);
    }
    useful
}

/// One component's smoothing: its real block grid and iMCU-row geometry.
pub(crate) struct Smoother<'a> {
    c: &'a Component,
    quant: [i64; 10],
    /// Real blocks (libjpeg's `width_in_blocks`, `height_in_blocks`).
    wib: usize,
    hib: usize,
    /// iMCU rows of the frame, and block rows per iMCU row (the sampling factor).
    imcu_rows: usize,
    v: usize,
    change_dc: bool,
}

impl<'a> Smoother<'a> {
    /// `imcu_rows`: the frame's iMCU rows, `ceil(height / (8 * vmax))`.
    pub(crate) fn new(c: &'a Component, imcu_rows: usize) -> Self {
        let q = c.quant.unwrap_or([1; 64]);
        Smoother {
            c,
            quant: NATURAL.map(|n| i64::from(q[n])),
            wib: c.dw.div_ceil(8),
            hib: c.dh.div_ceil(8),
            imcu_rows,
            v: c.v,
            change_dc: c.coef_bits[1..].iter().all(|&b| b == -1),
        }
    }

    /// Whether block (bx, by) is a real block, the only ones libjpeg-turbo transforms.
    pub(crate) fn is_real(&self, bx: usize, by: usize) -> bool {
        bx < self.wib && by < self.hib
    }

    /// Rows at offsets -2..=2 from block row `i`, by `decompress_smooth_data`'s rules.
    fn rows(&self, i: usize) -> [usize; 5] {
        let (r, br) = (i / self.v, i % self.v);
        let b = if r + 1 < self.imcu_rows {
            self.v
        } else {
            match self.hib % self.v {
                0 => self.v,
                m => m,
            }
        };
        let (ibr, ibrs) = (r * b + br, b * self.imcu_rows);
        let prev = if ibr > 0 { i - 1 } else { i };
        let prev2 = if ibr > 1 { i - 2 } else { prev };
        let next = if ibr + 1 < ibrs { i + 1 } else { i };
        let next2 = if ibr + 2 < ibrs { i + 2 } else { next };
        [prev2, prev, i, next, next2]
    }

    /// The DC of block (x, y); 0 below the stored grid (padding rows no scan coded).
    fn dc(&self, x: usize, y: usize) -> i32 {
        if y >= self.c.blocks_h {
            return 0;
        }
        self.c
            .blocks
            .get(y * self.c.blocks_w + x)
            .map_or(0, |b| i32::from(b[0]))
    }

    /// Block (bx, by)'s coefficients with the estimates applied.
    pub(crate) fn block(&self, bx: usize, by: usize) -> [i16; 64] {
        let c = self.c;
        let mut ws = c.blocks[by * c.blocks_w + bx];
        let rows = self.rows(by);
        let last = self.wib - 1;
        let cols =
            [-2isize, -1, 0, 1, 2].map(|d| (bx as isize + d).clamp(0, last as isize) as usize);
        let mut dcs = [[0i32; 5]; 5];
        for (r, &y) in rows.iter().enumerate() {
            for (k, &x) in cols.iter().enumerate() {
                dcs[r][k] = self.dc(x, y);
            }
        }
        let dot = |k: &Kernel| -> i64 {
            let mut s = 0i64;
            for (kr, dr) in k.iter().zip(&dcs) {
                for (&w, &d) in kr.iter().zip(dr) {
                    s += i64::from(w) * i64::from(d);
                }
            }
            s
        };
        let count = if self.change_dc { 9 } else { 5 };
        for z in 1..=count {
            let al = c.coef_bits[z];
            let pos = NATURAL[z];
            if al == 0 || ws[pos] != 0 {
                continue;
            }
            let kernel = if self.change_dc {
                &WITH_DC[z]
            } else {
                &WITHOUT_DC[z - 1]
            };
            let num = self.quant[0] * dot(kernel);
            ws[pos] = estimate(num, self.quant[z], i32::from(al)) as i16;
        }
        if self.change_dc {
            ws[0] = estimate(self.quant[0] * dot(&WITH_DC[0]), self.quant[0], 0) as i16;
        }
        ws
    }
}

/// `num / (256 q)` rounded to nearest (ties away from zero), its magnitude capped at what
/// `al` missing bits can hold when `al > 0`.
fn estimate(num: i64, q: i64, al: i32) -> i64 {
    let mut pred = ((q << 7) + num.abs()) / (q << 8);
    if al > 0 && pred >= 1 << al {
        pred = (1 << al) - 1;
    }
    if num < 0 {
        -pred
    } else {
        pred
    }
}
