//! Chroma upsampling and colour conversion exactly as libjpeg-turbo does them
//! with its defaults (`do_fancy_upsampling`, islow IDCT): `h2v1`/`h1v2`/`h2v2`
//! "fancy" (triangle) upsampling with libjpeg's alternating rounding biases and
//! edge replication, box replication otherwise, and `ycc_rgb_convert`'s 16-bit
//! fixed-point tables.

/// One decoded component: `w x h` real samples in a buffer of row `stride`.
pub(crate) struct Plane {
    pub data: Vec<u8>,
    pub stride: usize,
    pub w: usize,
    pub h: usize,
}

impl Plane {
    #[inline]
    fn row(&self, y: usize) -> &[u8] {
        &self.data[y * self.stride..y * self.stride + self.w]
    }
}

/// `h2v1_fancy_upsample` for one row (needs `w > 2`); `out` has `2 * w` bytes.
fn h2v1_row(inp: &[u8], out: &mut [u8]) {
    let w = inp.len();
    let v = |i: usize| i32::from(inp[i]);
    out[0] = inp[0];
    out[1] = ((v(0) * 3 + v(1) + 2) >> 2) as u8;
    for (i, pair) in out[2..2 * w - 2].chunks_exact_mut(2).enumerate() {
        let i = i + 1;
        let t = v(i) * 3;
        pair[0] = ((t + v(i - 1) + 1) >> 2) as u8;
        pair[1] = ((t + v(i + 1) + 2) >> 2) as u8;
    }
    out[2 * w - 2] = ((v(w - 1) * 3 + v(w - 2) + 1) >> 2) as u8;
    out[2 * w - 1] = inp[w - 1];
}

/// `h2v2_fancy_upsample` for one output row from the nearest input row `a` and
/// the next-nearest `b` (row above for the upper output row, below for the
/// lower); `out` has `2 * w` bytes.
fn h2v2_row(a: &[u8], b: &[u8], out: &mut [u8]) {
    let w = a.len();
    let col = |i: usize| i32::from(a[i]) * 3 + i32::from(b[i]);
    let mut this = col(0);
    let next = col(1);
    out[0] = ((this * 4 + 8) >> 4) as u8;
    out[1] = ((this * 3 + next + 7) >> 4) as u8;
    let mut last = this;
    this = next;
    for (i, pair) in (2..w).zip(out[2..2 * w - 2].chunks_exact_mut(2)) {
        let next = col(i);
        pair[0] = ((this * 3 + last + 8) >> 4) as u8;
        pair[1] = ((this * 3 + next + 7) >> 4) as u8;
        last = this;
        this = next;
    }
    out[2 * w - 2] = ((this * 3 + last + 8) >> 4) as u8;
    out[2 * w - 1] = ((this * 4 + 7) >> 4) as u8;
}

/// Produces full-resolution rows of one component on demand.
pub(crate) struct Upsampler<'a> {
    p: &'a Plane,
    hf: usize,
    vf: usize,
    tmp: Vec<u8>,
}

impl<'a> Upsampler<'a> {
    /// Upsampling by integer factors (`hf`, `vf`); `p` must be non-empty.
    pub(crate) fn new(p: &'a Plane, hf: usize, vf: usize) -> Self {
        Upsampler {
            p,
            hf: hf.max(1),
            vf: vf.max(1),
            tmp: vec![0u8; 2 * p.w],
        }
    }

    /// Writes output row `oy` (cropped to `dst.len()` columns) into `dst`.
    pub(crate) fn row(&mut self, oy: usize, dst: &mut [u8]) {
        let p = self.p;
        let last = p.h - 1;
        let iy = (oy / self.vf).min(last);
        // Fancy vertical filters pair each row with the one above (upper output
        // row) or below (lower output row), replicated at the edges.
        let other = if oy & 1 == 0 {
            iy.saturating_sub(1)
        } else {
            (iy + 1).min(last)
        };
        let row = p.row(iy);
        match (self.hf, self.vf) {
            (1, 1) => copy_prefix(dst, row),
            (2, 1) if p.w > 2 => {
                h2v1_row(row, &mut self.tmp);
                copy_prefix(dst, &self.tmp);
            }
            (1, 2) => {
                let bias = if oy & 1 == 0 { 1 } else { 2 };
                for ((d, &a), &b) in dst.iter_mut().zip(row).zip(p.row(other)) {
                    *d = ((i32::from(a) * 3 + i32::from(b) + bias) >> 2) as u8;
                }
            }
            (2, 2) if p.w > 2 => {
                h2v2_row(row, p.row(other), &mut self.tmp);
                copy_prefix(dst, &self.tmp);
            }
            _ => {
                // Box replication (`h2v1`, `h2v2`, `int_upsample`).
                for (x, d) in dst.iter_mut().enumerate() {
                    *d = row[(x / self.hf).min(p.w - 1)];
                }
            }
        }
    }
}

/// Copies `src` into the front of `dst`, repeating its last byte if short.
fn copy_prefix(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    dst[..n].copy_from_slice(&src[..n]);
    if let Some(&edge) = src.last() {
        dst[n..].fill(edge);
    }
}

/// libjpeg's `FIX(x)` with 16 fractional bits.
fn fix16(x: f64) -> i32 {
    (x * 65536.0 + 0.5) as i32
}

/// `clamp(i - 384, 0, 255)`: values reach -227..=482 here, well inside.
const CLAMP: [u8; 1024] = {
    let mut t = [0u8; 1024];
    let mut i = 0;
    while i < 1024 {
        t[i] = if i < 384 {
            0
        } else if i > 384 + 255 {
            255
        } else {
            (i - 384) as u8
        };
        i += 1;
    }
    t
};

/// Tables of `ycc_rgb_convert` (`jdcolor.c`), indexed by Cb or Cr.
pub(crate) struct YccTables {
    cr_r: [i32; 256],
    cb_b: [i32; 256],
    cr_g: [i32; 256],
    cb_g: [i32; 256],
}

impl YccTables {
    pub(crate) fn new() -> Self {
        const HALF: i32 = 1 << 15;
        let mut t = YccTables {
            cr_r: [0; 256],
            cb_b: [0; 256],
            cr_g: [0; 256],
            cb_g: [0; 256],
        };
        for i in 0..256 {
            let x = i as i32 - 128;
            t.cr_r[i] = (fix16(1.40200) * x + HALF) >> 16;
            t.cb_b[i] = (fix16(1.77200) * x + HALF) >> 16;
            t.cr_g[i] = -fix16(0.71414) * x;
            t.cb_g[i] = -fix16(0.34414) * x + HALF;
        }
        t
    }

    /// One pixel: `(R, G, B)` clamped to 0..=255 (libjpeg's `range_limit`).
    #[inline]
    pub(crate) fn rgb(&self, y: u8, cb: u8, cr: u8) -> [u8; 3] {
        let (y, cb, cr) = (i32::from(y), usize::from(cb), usize::from(cr));
        let c = |v: i32| CLAMP[(v + 384) as usize & 1023];
        [
            c(y + self.cr_r[cr]),
            c(y + ((self.cb_g[cb] + self.cr_g[cr]) >> 16)),
            c(y + self.cb_b[cb]),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_stays_grey() {
        let t = YccTables::new();
        for v in [0u8, 1, 100, 128, 254, 255] {
            assert_eq!(t.rgb(v, 128, 128), [v, v, v]);
        }
    }

    #[test]
    fn fancy_h2v1_edges() {
        let mut out = [0u8; 6];
        h2v1_row(&[0, 100, 200], &mut out);
        assert_eq!(out, [0, 25, 75, 125, 175, 200]);
    }
}
