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

/// `h2v1_fancy_upsample` for one row (needs `w > 2`).
fn h2v1_row(inp: &[u8], out: &mut Vec<u8>) {
    let w = inp.len();
    let v = |i: usize| i32::from(inp[i]);
    out.push(inp[0]);
    out.push(((v(0) * 3 + v(1) + 2) >> 2) as u8);
    for i in 1..w - 1 {
        let t = v(i) * 3;
        out.push(((t + v(i - 1) + 1) >> 2) as u8);
        out.push(((t + v(i + 1) + 2) >> 2) as u8);
    }
    out.push(((v(w - 1) * 3 + v(w - 2) + 1) >> 2) as u8);
    out.push(inp[w - 1]);
}

/// `h2v2_fancy_upsample` for one output row from the nearest input row `a` and
/// the next-nearest `b` (row above for the upper output row, below for the lower).
fn h2v2_row(a: &[u8], b: &[u8], out: &mut Vec<u8>) {
    let w = a.len();
    let col = |i: usize| i32::from(a[i]) * 3 + i32::from(b[i]);
    let mut this = col(0);
    let next = col(1);
    out.push(((this * 4 + 8) >> 4) as u8);
    out.push(((this * 3 + next + 7) >> 4) as u8);
    let mut last = this;
    this = next;
    for i in 2..w {
        let next = col(i);
        out.push(((this * 3 + last + 8) >> 4) as u8);
        out.push(((this * 3 + next + 7) >> 4) as u8);
        last = this;
        this = next;
    }
    out.push(((this * 3 + last + 8) >> 4) as u8);
    out.push(((this * 4 + 7) >> 4) as u8);
}

/// Upsamples a component by integer factors (`hf`, `vf`) to at least
/// `out_w x out_h` and crops to exactly that.
pub(crate) fn upsample(p: &Plane, hf: usize, vf: usize, out_w: usize, out_h: usize) -> Vec<u8> {
    let mut rows: Vec<Vec<u8>> = Vec::with_capacity(p.h * vf);
    let above = |y: usize| y.saturating_sub(1);
    let below = |y: usize| (y + 1).min(p.h - 1);
    match (hf, vf) {
        (2, 1) if p.w > 2 => {
            for y in 0..p.h {
                let mut r = Vec::with_capacity(2 * p.w);
                h2v1_row(p.row(y), &mut r);
                rows.push(r);
            }
        }
        (1, 2) => {
            for y in 0..p.h {
                for (other, bias) in [(above(y), 1), (below(y), 2)] {
                    let (a, b) = (p.row(y), p.row(other));
                    rows.push(
                        a.iter()
                            .zip(b)
                            .map(|(&a, &b)| ((i32::from(a) * 3 + i32::from(b) + bias) >> 2) as u8)
                            .collect(),
                    );
                }
            }
        }
        (2, 2) if p.w > 2 => {
            for y in 0..p.h {
                for other in [above(y), below(y)] {
                    let mut r = Vec::with_capacity(2 * p.w);
                    h2v2_row(p.row(y), p.row(other), &mut r);
                    rows.push(r);
                }
            }
        }
        _ => {
            // Box replication (`fullsize`, `h2v1`, `h2v2`, `int_upsample`).
            for y in 0..p.h {
                let r: Vec<u8> = p
                    .row(y)
                    .iter()
                    .flat_map(|&v| std::iter::repeat_n(v, hf))
                    .collect();
                for _ in 0..vf {
                    rows.push(r.clone());
                }
            }
        }
    }
    let mut out = Vec::with_capacity(out_w * out_h);
    for y in 0..out_h {
        let r = &rows[y.min(rows.len() - 1)];
        for x in 0..out_w {
            out.push(r[x.min(r.len() - 1)]);
        }
    }
    out
}

/// libjpeg's `FIX(x)` with 16 fractional bits.
fn fix16(x: f64) -> i32 {
    (x * 65536.0 + 0.5) as i32
}

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

    /// One pixel: `(R, G, B)` clamped to 0..=255.
    #[inline]
    pub(crate) fn rgb(&self, y: u8, cb: u8, cr: u8) -> [u8; 3] {
        let (y, cb, cr) = (i32::from(y), usize::from(cb), usize::from(cr));
        let c = |v: i32| v.clamp(0, 255) as u8;
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
        let mut out = Vec::new();
        h2v1_row(&[0, 100, 200], &mut out);
        assert_eq!(out, vec![0, 25, 75, 125, 175, 200]);
    }
}
