//! libjpeg-turbo's accurate integer inverse DCT (islow: the Loeffler-Ligtenberg-Moschytz
//! algorithm with 13-bit constants and 2 extra bits between passes) as its x86-64 SIMD
//! code computes it (`simd/x86_64/jidctint-avx2.asm`), which is what Pillow runs: 16-bit
//! dequantisation and sums where the SIMD code has them, 16-bit saturation between the
//! passes, saturated samples. On well-formed files that is the C `jpeg_idct_islow`
//! exactly (the tests hold both models); on extreme ones (quantisation values of 255
//! with large coefficients) only the SIMD arithmetic matches Pillow.
//!
//! Not here: dequantisation tables (`mod.rs`), block smoothing (`smooth.rs`).

const CONST_BITS: i32 = 13;
const PASS1_BITS: i32 = 2;

/// The 16-bit pair sums of `pmaddwd`: `a * ca + b * cb` in wrapping 32-bit arithmetic.
#[inline]
fn madd(a: i16, ca: i32, b: i16, cb: i32) -> i32 {
    (i32::from(a) * ca).wrapping_add(i32::from(b) * cb)
}

/// One 1-D pass of libjpeg-turbo's AVX2 islow (`DODCT` in `jidctint-avx2.asm`) on 8
/// 16-bit inputs: `in0 + in4`, `in0 - in4`, `in7 + in3` and `in5 + in1` are 16-bit sums
/// (they wrap), products and the rest are 32-bit (wrapping), and each output is descaled
/// by `shift` and saturated to 16 bits (`packssdw`). Equal to the C code's arithmetic
/// whenever nothing overflows 16 bits, which holds for every well-formed 8-bit file.
#[inline(always)]
fn dodct(v: [i16; 8], shift: u32) -> [i16; 8] {
    let (f0298, f0390, f0541, f0765) = (2446, 3196, 4433, 6270);
    let (f0899, f1175, f1501, f1847) = (7373, 9633, 12299, 15137);
    let (f1961, f2053, f2562, f3072) = (16069, 16819, 20995, 25172);
    // Even part.
    let tmp3 = madd(v[2], f0541 + f0765, v[6], f0541);
    let tmp2 = madd(v[2], f0541, v[6], f0541 - f1847);
    let tmp0 = i32::from(v[0].wrapping_add(v[4])) << CONST_BITS;
    let tmp1 = i32::from(v[0].wrapping_sub(v[4])) << CONST_BITS;
    let (tmp10, tmp13) = (tmp0.wrapping_add(tmp3), tmp0.wrapping_sub(tmp3));
    let (tmp11, tmp12) = (tmp1.wrapping_add(tmp2), tmp1.wrapping_sub(tmp2));
    // Odd part.
    let z3 = v[7].wrapping_add(v[3]);
    let z4 = v[5].wrapping_add(v[1]);
    let z3p = madd(z3, f1175 - f1961, z4, f1175);
    let z4p = madd(z3, f1175, z4, f1175 - f0390);
    let o0 = madd(v[7], f0298 - f0899, v[1], -f0899).wrapping_add(z3p);
    let o1 = madd(v[5], f2053 - f2562, v[3], -f2562).wrapping_add(z4p);
    let o3 = madd(v[7], -f0899, v[1], f1501 - f0899).wrapping_add(z4p);
    let o2 = madd(v[5], -f2562, v[3], f3072 - f2562).wrapping_add(z3p);
    let out = |x: i32| sat16(x.wrapping_add(1 << (shift - 1)) >> shift);
    [
        out(tmp10.wrapping_add(o3)),
        out(tmp11.wrapping_add(o2)),
        out(tmp12.wrapping_add(o1)),
        out(tmp13.wrapping_add(o0)),
        out(tmp13.wrapping_sub(o0)),
        out(tmp12.wrapping_sub(o1)),
        out(tmp11.wrapping_sub(o2)),
        out(tmp10.wrapping_sub(o3)),
    ]
}

/// A pass-2 output as a sample: saturated to 8 bits signed (`packsswb`), plus 128.
#[inline]
fn to_sample(x: i16) -> u8 {
    (x.clamp(-128, 127) + 128) as u8
}

/// Dequantises and inverse-transforms one block (coefficients and quantisation
/// table in natural order) into 8 rows of `out` starting at `out[0]`, with row
/// stride `stride`.
///
/// The arithmetic is that of libjpeg-turbo's x86-64 SIMD islow (what Pillow runs), not of
/// its C code: dequantisation is a 16-bit multiply (`pmullw`, it wraps), pass 1's outputs
/// are saturated to 16 bits, and samples are saturated, not wrapped through the C code's
/// range-limit table. The two agree on every well-formed file; on extreme ones (e.g. all
/// quantisation values 255 and large coefficients) only this matches Pillow.
pub(crate) fn idct_islow(coef: &[i16; 64], quant: &[u16; 64], out: &mut [u8], stride: usize) {
    if out.len() < 7 * stride + 8 {
        return;
    }
    let deq = |i: usize| (i32::from(coef[i]) * i32::from(quant[i])) as i16;
    // The work array, ws[row][col].
    let ws: [[i16; 8]; 8] = if coef[8..].iter().all(|&c| c == 0) {
        // Only the first row of coefficients: libjpeg-turbo's shortcut, each column's
        // value shifted left by PASS1_BITS in 16 bits (`psllw`, it wraps).
        let row: [i16; 8] = std::array::from_fn(|c| deq(c).wrapping_shl(PASS1_BITS as u32));
        if row[1..].iter().all(|&x| x == 0) {
            // DC only: every output of pass 2 is the same.
            let v = dodct([row[0], 0, 0, 0, 0, 0, 0, 0], PASS2_SHIFT)[0];
            for r in out.chunks_mut(stride).take(8) {
                r[..8].fill(to_sample(v));
            }
            return;
        }
        [row; 8]
    } else {
        let mut ws = [[0i16; 8]; 8];
        for c in 0..8 {
            let v: [i16; 8] = std::array::from_fn(|r| deq(r * 8 + c));
            let col = if v[1..].iter().all(|&x| x == 0) {
                // `dodct` of a lone first value, exactly: (v0 << 13 + 2^10) >> 11, saturated.
                [sat16(i32::from(v[0]) * 4); 8]
            } else {
                dodct(v, PASS1_SHIFT)
            };
            for (row, x) in ws.iter_mut().zip(col) {
                row[c] = x;
            }
        }
        ws
    };
    for (w, dst) in ws.iter().zip(out.chunks_mut(stride)) {
        let dst = &mut dst[..8];
        if w[1..].iter().all(|&x| x == 0) {
            // `dodct` of a lone first value: eight equal outputs.
            let x = (i32::from(w[0]) * 8192 + (1 << (PASS2_SHIFT - 1))) >> PASS2_SHIFT;
            dst.fill(to_sample(sat16(x)));
            continue;
        }
        for (d, x) in dst.iter_mut().zip(dodct(*w, PASS2_SHIFT)) {
            *d = to_sample(x);
        }
    }
}

#[inline]
fn sat16(x: i32) -> i16 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

const PASS1_SHIFT: u32 = (CONST_BITS - PASS1_BITS) as u32;
const PASS2_SHIFT: u32 = (CONST_BITS + PASS1_BITS + 3) as u32;

#[cfg(test)]
mod tests {
    use super::*;

    /// The C `jpeg_idct_islow` (`jidctint.c`) in i64, no shortcuts, with its range-limit
    /// table (`x & 1023`); `None` if a value leaves what a well-formed 8-bit file gives
    /// (dequantised or pass-1 values past 16 bits, samples past the table's clamp range).
    fn c_reference(coef: &[i16; 64], quant: &[u16; 64]) -> Option<[u8; 64]> {
        c_model(coef, quant, true)
    }

    /// The C code's result; `strict`: `None` where a value leaves the well-formed range.
    fn c_model(coef: &[i16; 64], quant: &[u16; 64], strict: bool) -> Option<[u8; 64]> {
        fn descale(x: i64, n: i32) -> i64 {
            (x + (1 << (n - 1))) >> n
        }
        fn range_limit(x: i64) -> u8 {
            match x & 1023 {
                i @ 0..=127 => (i + 128) as u8,
                128..=511 => 255,
                512..=895 => 0,
                i => (i - 896) as u8,
            }
        }
        fn butterfly(v: [i64; 8]) -> [i64; 8] {
            let z1 = (v[2] + v[6]) * 4433;
            let tmp2 = z1 + v[6] * -15137;
            let tmp3 = z1 + v[2] * 6270;
            let tmp0 = (v[0] + v[4]) << CONST_BITS;
            let tmp1 = (v[0] - v[4]) << CONST_BITS;
            let (tmp10, tmp13, tmp11, tmp12) = (tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2);
            let (t0, t1, t2, t3) = (v[7], v[5], v[3], v[1]);
            let z5 = (t0 + t2 + t1 + t3) * 9633;
            let z1 = (t0 + t3) * -7373;
            let z2 = (t1 + t2) * -20995;
            let z3 = (t0 + t2) * -16069 + z5;
            let z4 = (t1 + t3) * -3196 + z5;
            let t0 = t0 * 2446 + z1 + z3;
            let t1 = t1 * 16819 + z2 + z4;
            let t2 = t2 * 25172 + z2 + z3;
            let t3 = t3 * 12299 + z1 + z4;
            [
                tmp10 + t3,
                tmp11 + t2,
                tmp12 + t1,
                tmp13 + t0,
                tmp13 - t0,
                tmp12 - t1,
                tmp11 - t2,
                tmp10 - t3,
            ]
        }
        let fits = |x: i64| (-16384..16384).contains(&x);
        let mut ws = [0i64; 64];
        for col in 0..8 {
            let v: [i64; 8] = std::array::from_fn(|r| {
                i64::from(coef[r * 8 + col]) * i64::from(quant[r * 8 + col])
            });
            if strict && !v.iter().all(|&x| fits(x)) {
                return None;
            }
            for (r, x) in butterfly(v).into_iter().enumerate() {
                ws[r * 8 + col] = i64::from(descale(x, CONST_BITS - PASS1_BITS) as i32);
            }
        }
        if strict && !ws.iter().all(|&x| fits(x)) {
            return None;
        }
        let mut out = [0u8; 64];
        for row in 0..8 {
            let v = std::array::from_fn(|i| ws[row * 8 + i]);
            for (i, x) in butterfly(v).into_iter().enumerate() {
                let x = descale(x, CONST_BITS + PASS1_BITS + 3);
                if strict && !(-512..512).contains(&x) {
                    return None;
                }
                out[row * 8 + i] = range_limit(x);
            }
        }
        Some(out)
    }

    /// The SIMD code as written, lane by lane: the first-row-only test on the
    /// coefficients, then `dodct` on every column (or the shifted first row), then on
    /// every row; no DC-only shortcut.
    fn simd_reference(coef: &[i16; 64], quant: &[u16; 64]) -> [u8; 64] {
        let deq = |i: usize| (i32::from(coef[i]) * i32::from(quant[i])) as i16;
        let cols: [[i16; 8]; 8] = std::array::from_fn(|c| {
            if coef[8..].iter().all(|&x| x == 0) {
                [deq(c).wrapping_shl(2); 8]
            } else {
                dodct(std::array::from_fn(|r| deq(r * 8 + c)), PASS1_SHIFT)
            }
        });
        let ws: [[i16; 8]; 8] = std::array::from_fn(|r| std::array::from_fn(|c| cols[c][r]));
        let mut out = [0u8; 64];
        for (r, w) in ws.iter().enumerate() {
            for (c, x) in dodct(*w, PASS2_SHIFT).into_iter().enumerate() {
                out[r * 8 + c] = to_sample(x);
            }
        }
        out
    }

    /// Random blocks: `(coefficients, quantisation)`; `range` bounds the coefficients,
    /// `qmax` the quantisation values.
    fn blocks(n: usize, range: i32, qmax: i32) -> Vec<([i16; 64], [u16; 64])> {
        let mut seed = 7u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (seed >> 8) as i32
        };
        (0..n)
            .map(|trial| {
                let mut coef = [0i16; 64];
                let mut quant = [1u16; 64];
                let density = 1 + trial % 64;
                for i in 0..64 {
                    quant[i] = (1 + next().rem_euclid(qmax)) as u16;
                    // Some blocks only in the first row, some DC only: the shortcuts.
                    let allowed = match trial % 4 {
                        0 => i < 8,
                        1 => i == 0,
                        _ => true,
                    };
                    if allowed && next().rem_euclid(64) < density as i32 {
                        coef[i] = (next().rem_euclid(2 * range + 1) - range) as i16;
                    }
                }
                (coef, quant)
            })
            .collect()
    }

    #[test]
    fn dc_only_block_is_flat() {
        let mut coef = [0i16; 64];
        coef[0] = 80; // DC 80 * 1 / 8 = 10 above mid-grey
        let mut out = [0u8; 64];
        idct_islow(&coef, &[1; 64], &mut out, 8);
        assert!(out.iter().all(|&v| v == 138), "{out:?}");
    }

    /// The shortcuts (first row only, DC only, lone first values of a column or a row)
    /// give the lane model's results, extreme values included.
    #[test]
    fn shortcuts_match_the_lane_model() {
        for (range, qmax) in [(8, 60), (2000, 60), (2047, 255), (32767, 65535)] {
            for (i, (coef, quant)) in blocks(2000, range, qmax).iter().enumerate() {
                let mut out = [0u8; 64];
                idct_islow(coef, quant, &mut out, 8);
                assert_eq!(out, simd_reference(coef, quant), "range {range} block {i}");
            }
        }
    }

    /// Where nothing overflows (every well-formed 8-bit file), the SIMD arithmetic is the
    /// C code's. With quantisation values of 255 and large coefficients it is not.
    #[test]
    fn equals_the_c_code_unless_values_overflow() {
        let mut compared = 0;
        for (range, qmax) in [(8, 60), (100, 30), (255, 8), (2000, 4)] {
            for (i, (coef, quant)) in blocks(3000, range, qmax).iter().enumerate() {
                let Some(want) = c_reference(coef, quant) else {
                    continue;
                };
                let mut out = [0u8; 64];
                idct_islow(coef, quant, &mut out, 8);
                assert_eq!(out, want, "range {range} block {i}");
                compared += 1;
            }
        }
        assert!(compared > 5000, "{compared}");
        let differ = blocks(500, 2047, 255)
            .iter()
            .filter(|(c, q)| {
                let mut out = [0u8; 64];
                idct_islow(c, q, &mut out, 8);
                Some(out) != c_model(c, q, false)
            })
            .count();
        assert!(differ > 100, "{differ}");
    }
}
