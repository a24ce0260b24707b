//! libjpeg-turbo's accurate integer inverse DCT (`jpeg_idct_islow`, from
//! `jidctint.c`): the Loeffler-Ligtenberg-Moschytz algorithm with 13-bit
//! constants, 2 extra bits between passes, and libjpeg's post-IDCT range-limit
//! table (index `& 1023`, so wildly out-of-range values wrap as in libjpeg).
//! libjpeg-turbo's SIMD versions give the same results, so this matches Pillow.

const CONST_BITS: i32 = 13;
const PASS1_BITS: i32 = 2;

const FIX_0_298631336: i64 = 2446;
const FIX_0_390180644: i64 = 3196;
const FIX_0_541196100: i64 = 4433;
const FIX_0_765366865: i64 = 6270;
const FIX_0_899976223: i64 = 7373;
const FIX_1_175875602: i64 = 9633;
const FIX_1_501321110: i64 = 12299;
const FIX_1_847759065: i64 = 15137;
const FIX_1_961570560: i64 = 16069;
const FIX_2_053119869: i64 = 16819;
const FIX_2_562915447: i64 = 20995;
const FIX_3_072711026: i64 = 25172;

/// `DESCALE(x, n)`: round and arithmetic shift right.
#[inline]
fn descale(x: i64, n: i32) -> i64 {
    (x + (1 << (n - 1))) >> n
}

/// libjpeg's `IDCT_range_limit[x & RANGE_MASK]` for 8-bit samples.
#[inline]
fn range_limit(x: i64) -> u8 {
    let i = (x & 1023) as i32;
    match i {
        0..=127 => (i + 128) as u8,
        128..=511 => 255,
        512..=895 => 0,
        _ => (i - 896) as u8,
    }
}

/// One 1-D pass of the even/odd butterfly on `v[0..8]` (already dequantised
/// or from the work array); returns the 8 outputs before descaling.
#[inline]
fn butterfly(v: [i64; 8]) -> [i64; 8] {
    // Even part.
    let z2 = v[2];
    let z3 = v[6];
    let z1 = (z2 + z3) * FIX_0_541196100;
    let tmp2 = z1 + z3 * -FIX_1_847759065;
    let tmp3 = z1 + z2 * FIX_0_765366865;
    let tmp0 = (v[0] + v[4]) << CONST_BITS;
    let tmp1 = (v[0] - v[4]) << CONST_BITS;
    let tmp10 = tmp0 + tmp3;
    let tmp13 = tmp0 - tmp3;
    let tmp11 = tmp1 + tmp2;
    let tmp12 = tmp1 - tmp2;
    // Odd part.
    let (t0, t1, t2, t3) = (v[7], v[5], v[3], v[1]);
    let z1 = t0 + t3;
    let z2 = t1 + t2;
    let z3 = t0 + t2;
    let z4 = t1 + t3;
    let z5 = (z3 + z4) * FIX_1_175875602;
    let mut t0 = t0 * FIX_0_298631336;
    let mut t1 = t1 * FIX_2_053119869;
    let mut t2 = t2 * FIX_3_072711026;
    let mut t3 = t3 * FIX_1_501321110;
    let z1 = z1 * -FIX_0_899976223;
    let z2 = z2 * -FIX_2_562915447;
    let z3 = z3 * -FIX_1_961570560 + z5;
    let z4 = z4 * -FIX_0_390180644 + z5;
    t0 += z1 + z3;
    t1 += z2 + z4;
    t2 += z2 + z3;
    t3 += z1 + z4;
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

/// Dequantises and inverse-transforms one block (coefficients and quantisation
/// table in natural order) into 8 rows of `out` starting at `out[0]`, with row
/// stride `stride`.
pub(crate) fn idct_islow(coef: &[i16; 64], quant: &[u16; 64], out: &mut [u8], stride: usize) {
    // libjpeg keeps the work array as int.
    let mut ws = [0i32; 64];
    // Pass 1: columns -> work array, scaled by 2^PASS1_BITS.
    for col in 0..8 {
        let c = |r: usize| i64::from(coef[r * 8 + col]) * i64::from(quant[r * 8 + col]);
        let ac_zero = coef[8 + col] == 0
            && coef[16 + col] == 0
            && coef[24 + col] == 0
            && coef[32 + col] == 0
            && coef[40 + col] == 0
            && coef[48 + col] == 0
            && coef[56 + col] == 0;
        if ac_zero {
            let dc = (c(0) << PASS1_BITS) as i32;
            for r in 0..8 {
                ws[r * 8 + col] = dc;
            }
            continue;
        }
        let o = butterfly([c(0), c(1), c(2), c(3), c(4), c(5), c(6), c(7)]);
        for (r, v) in o.into_iter().enumerate() {
            ws[r * 8 + col] = descale(v, CONST_BITS - PASS1_BITS) as i32;
        }
    }
    // Pass 2: rows -> samples.
    for (row, w) in ws.chunks_exact(8).enumerate() {
        let Some(dst) = out.get_mut(row * stride..row * stride + 8) else {
            return;
        };
        if w[1..].iter().all(|&x| x == 0) {
            dst.fill(range_limit(descale(i64::from(w[0]), PASS1_BITS + 3)));
            continue;
        }
        let o = butterfly(std::array::from_fn(|i| i64::from(w[i])));
        for (d, v) in dst.iter_mut().zip(o) {
            *d = range_limit(descale(v, CONST_BITS + PASS1_BITS + 3));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dc_only_block_is_flat() {
        let mut coef = [0i16; 64];
        coef[0] = 80; // DC 80 * 1 / 8 = 10 above mid-grey
        let mut out = [0u8; 64];
        idct_islow(&coef, &[1; 64], &mut out, 8);
        assert!(out.iter().all(|&v| v == 138), "{out:?}");
    }

    #[test]
    fn range_limit_wraps_like_libjpeg() {
        assert_eq!(range_limit(0), 128);
        assert_eq!(range_limit(127), 255);
        assert_eq!(range_limit(300), 255);
        assert_eq!(range_limit(-128), 0);
        assert_eq!(range_limit(-300), 0);
        assert_eq!(range_limit(1024), 128);
    }
}
