//! Pillow's `Image.resize(..., BICUBIC)` and `(..., BILINEAR)` for 8-bit RGB, bit for bit.
//!
//! Two separable passes, each with Pillow's coefficients: bicubic with a = -0.5 (support 2)
//! or the triangle (support 1), the support widened by the scale factor when downscaling
//! (antialiasing), weights
//! normalised in f64 then rounded to 22-bit fixed point, accumulation in i32 from
//! a rounding bias of 2^21, and clamping to u8 after each pass. A pass whose size
//! does not change is skipped, as in Pillow. The pass order is Pillow 13's
//! (`horizontal_first` in `ImagingResampleInner`): horizontal first, over only
//! the rows the vertical pass reads, unless the height shrinks by more than
//! twice as many pixels as the width, then vertical first over all columns.
//! The order changes the u8 result (rounding between passes). There is no SIMD; the inner loops
//! are plain slices the compiler vectorises.

/// Pillow's resampling filters that CLIP pipelines use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Filter {
    /// Keys' cubic with a = -0.5, support 2 (`Image.BICUBIC`): CLIP's.
    #[default]
    Bicubic,
    /// The triangle, support 1 (`Image.BILINEAR`).
    Bilinear,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bicubic => 2.0,
            Filter::Bilinear => 1.0,
        }
    }

    fn eval(self, x: f64) -> f64 {
        match self {
            Filter::Bicubic => bicubic(x),
            Filter::Bilinear => {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
        }
    }
}

/// Fractional bits of Pillow's fixed-point weights (`32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;

/// The bicubic kernel with a = -0.5 (Keys), evaluated in f64 as Pillow does.
pub fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Per-output-pixel taps of one pass: output `i` reads `len[i]` inputs from
/// `start[i]` with the weights `weights[i * ksize..][..len[i]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Coeffs {
    pub ksize: usize,
    pub start: Vec<usize>,
    pub len: Vec<usize>,
    /// Normalised f64 weights (before fixed-point rounding).
    pub weights: Vec<f64>,
}

/// Pillow's `precompute_coeffs` for the box `[0, in_size)` and the bicubic filter.
pub fn precompute_coeffs(in_size: usize, out_size: usize) -> Coeffs {
    precompute_coeffs_window(Filter::Bicubic, in_size, out_size, 0, out_size)
}

/// Pillow's `precompute_coeffs` with `filter`, for outputs `first..first + n` only (each
/// output's taps depend on its index alone), so a crop window of a huge resize costs the
/// window, not the resize.
pub fn precompute_coeffs_window(
    filter: Filter,
    in_size: usize,
    out_size: usize,
    first: usize,
    n: usize,
) -> Coeffs {
    let in0 = 0.0f32;
    let in1 = in_size as f32;
    let scale = f64::from(in1 - in0) / out_size as f64;
    let filterscale = if scale < 1.0 { 1.0 } else { scale };
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut c = Coeffs {
        ksize,
        start: Vec::with_capacity(n),
        len: Vec::with_capacity(n),
        weights: vec![0.0; n * ksize],
    };
    let ss = 1.0 / filterscale;
    for (i, xx) in (first..first + n).enumerate() {
        let center = f64::from(in0) + (xx as f64 + 0.5) * scale;
        // C's `(int)` truncates toward zero; `as` does too.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
        let n = (xmax - xmin).max(0) as usize;
        let k = &mut c.weights[i * ksize..i * ksize + n.min(ksize)];
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate() {
            let w = filter.eval(((x as i64 + xmin) as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        if ww != 0.0 {
            for kx in k.iter_mut() {
                *kx /= ww;
            }
        }
        c.start.push(xmin as usize);
        c.len.push(n.min(ksize));
    }
    c
}

/// Pillow's `normalize_coeffs_8bpc`: round half away from zero to 22 bits.
pub fn fixed_point(weights: &[f64]) -> Vec<i32> {
    let one = f64::from(1u32 << PRECISION_BITS);
    weights
        .iter()
        .map(|&w| {
            if w < 0.0 {
                (-0.5 + w * one) as i32
            } else {
                (0.5 + w * one) as i32
            }
        })
        .collect()
}

/// Pillow's `clip8`: arithmetic shift, then clamp to 0..=255.
#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

const BIAS: i32 = 1 << (PRECISION_BITS - 1);

/// Horizontal pass over rows `row0..row0 + rows` of an interleaved RGB image.
fn horizontal(
    src: &[u8],
    width: usize,
    row0: usize,
    rows: usize,
    c: &Coeffs,
    out_w: usize,
) -> Vec<u8> {
    let k = fixed_point(&c.weights);
    let mut out = vec![0u8; out_w * rows * 3];
    for (y, out_row) in out.chunks_exact_mut(out_w * 3).enumerate() {
        let row = &src[(row0 + y) * width * 3..(row0 + y + 1) * width * 3];
        for (xx, px) in out_row.chunks_exact_mut(3).enumerate() {
            let (s, n) = (c.start[xx], c.len[xx]);
            let taps = &k[xx * c.ksize..xx * c.ksize + n];
            let (mut r, mut g, mut b) = (BIAS, BIAS, BIAS);
            for (p, &w) in row[s * 3..(s + n) * 3].chunks_exact(3).zip(taps) {
                r += i32::from(p[0]) * w;
                g += i32::from(p[1]) * w;
                b += i32::from(p[2]) * w;
            }
            px[0] = clip8(r);
            px[1] = clip8(g);
            px[2] = clip8(b);
        }
    }
    out
}

/// Vertical pass; `c.start` is relative to the first row of `src`.
fn vertical(src: &[u8], width: usize, c: &Coeffs, row_offset: usize, out_h: usize) -> Vec<u8> {
    let k = fixed_point(&c.weights);
    let line = width * 3;
    let mut out = vec![0u8; line * out_h];
    let mut acc = vec![0i32; line];
    for (yy, out_row) in out.chunks_exact_mut(line).enumerate() {
        acc.fill(BIAS);
        let s = c.start[yy] - row_offset;
        let taps = &k[yy * c.ksize..yy * c.ksize + c.len[yy]];
        for (dy, &w) in taps.iter().enumerate() {
            let row = &src[(s + dy) * line..(s + dy + 1) * line];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += i32::from(p) * w;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    out
}

/// Pillow 13's pass order: vertical first only if the height loses more than
/// twice as many pixels as the width (`dh > 0 && dh > 2 * dw`).
pub fn horizontal_first(width: usize, height: usize, out_w: usize, out_h: usize) -> bool {
    let dh = height as i64 - out_h as i64;
    let dw = width as i64 - out_w as i64;
    !(dh > 0 && dh > dw * 2)
}

/// A rectangle of the resized image: columns `x0..x0 + width`, rows
/// `y0..y0 + height`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub x0: usize,
    pub y0: usize,
    pub width: usize,
    pub height: usize,
}

/// Copies a window out of an interleaved RGB image of the given width.
fn crop(src: &[u8], width: usize, win: Window) -> Vec<u8> {
    let mut out = Vec::with_capacity(win.width * win.height * 3);
    for y in win.y0..win.y0 + win.height {
        let row = (y * width + win.x0) * 3;
        out.extend_from_slice(&src[row..row + win.width * 3]);
    }
    out
}

/// Resizes interleaved RGB `width x height` to `out_w x out_h` like Pillow's
/// `resize((out_w, out_h), filter)`. Sizes must be non-zero and `src` exactly
/// `width * height * 3` bytes (the caller, `Preprocessor`, guarantees both).
pub fn resize(
    filter: Filter,
    src: &[u8],
    width: usize,
    height: usize,
    out_w: usize,
    out_h: usize,
) -> Vec<u8> {
    let all = Window {
        x0: 0,
        y0: 0,
        width: out_w,
        height: out_h,
    };
    resize_window(filter, src, width, height, out_w, out_h, all)
}

/// Only the `win` part of [`resize`]'s result, computing nothing else
/// (e.g. just the center crop). Every output pixel depends only on its own
/// taps and the pass order is decided from the full sizes, so the window is
/// bit-identical to cropping the full result. An out-of-range window or bad
/// sizes give a zero image of the window's size.
pub fn resize_window(
    filter: Filter,
    src: &[u8],
    width: usize,
    height: usize,
    out_w: usize,
    out_h: usize,
    win: Window,
) -> Vec<u8> {
    let (wn, hn) = (win.width, win.height);
    let bad = width == 0 || height == 0 || wn == 0 || hn == 0 || src.len() != width * height * 3;
    if bad || win.x0 + wn > out_w || win.y0 + hn > out_h {
        return vec![0; wn * hn * 3];
    }
    let need_h = out_w != width;
    let need_v = out_h != height;
    match (need_h, need_v) {
        (false, false) => crop(src, width, win),
        (true, false) => {
            let ch = precompute_coeffs_window(filter, width, out_w, win.x0, wn);
            horizontal(src, width, win.y0, hn, &ch, wn)
        }
        (false, true) => {
            let cv = precompute_coeffs_window(filter, height, out_h, win.y0, hn);
            let tmp = vertical(src, width, &cv, 0, hn);
            crop(&tmp, width, Window { y0: 0, ..win })
        }
        (true, true) => {
            let ch = precompute_coeffs_window(filter, width, out_w, win.x0, wn);
            let cv = precompute_coeffs_window(filter, height, out_h, win.y0, hn);
            if horizontal_first(width, height, out_w, out_h) {
                let first = cv.start[0];
                let last = cv.start[hn - 1] + cv.len[hn - 1];
                let tmp = horizontal(src, width, first, last - first, &ch, wn);
                vertical(&tmp, wn, &cv, first, hn)
            } else {
                let tmp = vertical(src, width, &cv, 0, hn);
                horizontal(&tmp, width, 0, hn, &ch, wn)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_values() {
        assert_eq!(bicubic(0.0), 1.0);
        assert_eq!(bicubic(1.0), 0.0);
        assert_eq!(bicubic(2.0), 0.0);
        assert_eq!(bicubic(-0.5), 0.5625);
        assert_eq!(bicubic(1.5), -0.0625);
    }

    #[test]
    fn identity_and_constant() {
        let src: Vec<u8> = (0..5 * 4 * 3).map(|i| (i * 7 % 256) as u8).collect();
        assert_eq!(resize(Filter::Bicubic, &src, 5, 4, 5, 4), src);
        let flat = vec![77u8; 13 * 9 * 3];
        for (w, h) in [(1, 1), (4, 3), (26, 18), (100, 2)] {
            assert!(resize(Filter::Bicubic, &flat, 13, 9, w, h)
                .iter()
                .all(|&v| v == 77));
        }
    }

    /// Straight from the formula: for output `i`, centre `(i + 0.5) * scale`,
    /// taps `[round(c - support), round(c + support))` clipped, weights
    /// `bicubic((j - c + 0.5) / filterscale)` normalised, 22-bit rounding.
    fn naive_pass(
        src: &[u8],
        n_in: usize,
        n_out: usize,
        stride: usize,
        lines: usize,
        step: usize,
    ) -> Vec<u8> {
        let scale = n_in as f64 / n_out as f64;
        let fs = scale.max(1.0);
        let support = 2.0 * fs;
        let mut out = vec![0u8; n_out * lines * 3];
        for line in 0..lines {
            for i in 0..n_out {
                let c = (i as f64 + 0.5) * scale;
                let lo = ((c - support + 0.5) as i64).max(0) as usize;
                let hi = ((c + support + 0.5) as i64).min(n_in as i64) as usize;
                let w: Vec<f64> = (lo..hi)
                    .map(|j| bicubic((j as f64 - c + 0.5) / fs))
                    .collect();
                let total: f64 = w.iter().sum();
                for ch in 0..3 {
                    let mut acc: i64 = 1 << 21;
                    for (j, wj) in (lo..hi).zip(&w) {
                        let k = wj / total * f64::from(1u32 << 22);
                        let k = if k < 0.0 {
                            (k - 0.5) as i64
                        } else {
                            (k + 0.5) as i64
                        };
                        acc += i64::from(src[(line * stride + j * step) * 3 + ch]) * k;
                    }
                    let (o_line, o_i) = if step == 1 { (line, i) } else { (i, line) };
                    let idx = if step == 1 {
                        (o_line * n_out + o_i) * 3
                    } else {
                        (o_line * lines + o_i) * 3
                    };
                    out[idx + ch] = (acc >> 22).clamp(0, 255) as u8;
                }
            }
        }
        out
    }

    #[test]
    fn matches_naive_formula() {
        let mut seed = 12345u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            seed >> 8
        };
        for _ in 0..60 {
            let (w, h) = (1 + next() as usize % 40, 1 + next() as usize % 40);
            let (ow, oh) = (1 + next() as usize % 50, 1 + next() as usize % 50);
            let src: Vec<u8> = (0..w * h * 3).map(|_| (next() % 256) as u8).collect();
            // naive horizontal: lines = rows, stride = w, step 1; vertical: lines = cols, stride 1, step w.
            let want = if horizontal_first(w, h, ow, oh) {
                let t = if ow != w {
                    naive_pass(&src, w, ow, w, h, 1)
                } else {
                    src.clone()
                };
                if oh != h {
                    naive_pass(&t, h, oh, 1, ow, ow)
                } else {
                    t
                }
            } else {
                let t = if oh != h {
                    naive_pass(&src, h, oh, 1, w, w)
                } else {
                    src.clone()
                };
                if ow != w {
                    naive_pass(&t, w, ow, w, oh, 1)
                } else {
                    t
                }
            };
            assert_eq!(
                resize(Filter::Bicubic, &src, w, h, ow, oh),
                want,
                "{w}x{h} -> {ow}x{oh}"
            );
        }
    }

    #[test]
    fn window_equals_crop_of_full() {
        let (w, h) = (37, 29);
        let src: Vec<u8> = (0..w * h * 3).map(|i| (i * 97 % 256) as u8).collect();
        for (ow, oh) in [(20, 15), (37, 12), (12, 29), (60, 41), (37, 29), (5, 80)] {
            let full = resize(Filter::Bicubic, &src, w, h, ow, oh);
            let win = Window {
                x0: ow / 4,
                y0: oh / 3,
                width: ow / 2 + 1,
                height: oh / 2,
            };
            let part = resize_window(Filter::Bicubic, &src, w, h, ow, oh, win);
            assert_eq!(part, crop(&full, ow, win), "{ow}x{oh}");
        }
    }

    #[test]
    fn weights_sum_to_one() {
        for (i, o) in [(1, 224), (7, 3), (640, 298), (3000, 224)] {
            let c = precompute_coeffs(i, o);
            for x in 0..o {
                let s: f64 = c.weights[x * c.ksize..x * c.ksize + c.len[x]].iter().sum();
                assert!((s - 1.0).abs() < 1e-9, "{i}->{o} at {x}: {s}");
            }
        }
    }
}
