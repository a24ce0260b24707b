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

/// libjpeg's `IDCT_range_limit` table for 8-bit samples, indexed by `x & 1023`.
const RANGE_LIMIT: [u8; 1024] = {
    let mut t = [0u8; 1024];
    let mut i = 0;
    while i < 1024 {
        t[i] = match i {
            0..=127 => (i + 128) as u8,
            128..=511 => 255,
            512..=895 => 0,
            _ => (i - 896) as u8,
        };
        i += 1;
    }
    t
};

/// `range_limit[x & RANGE_MASK]`.
#[inline]
fn range_limit(x: i64) -> u8 {
    RANGE_LIMIT[(x & 1023) as usize]
}

/// One 1-D pass of the even/odd butterfly on `v[0..8]` (already dequantised
/// or from the work array); returns the 8 outputs before descaling, in i64
/// like libjpeg's `JLONG`.
macro_rules! butterfly {
    ($name:ident, $t:ty) => {
        #[inline]
        fn $name(v: [$t; 8]) -> [$t; 8] {
            // Even part.
            let z2 = v[2];
            let z3 = v[6];
            let z1 = (z2 + z3) * FIX_0_541196100 as $t;
            let tmp2 = z1 + z3 * -(FIX_1_847759065 as $t);
            let tmp3 = z1 + z2 * FIX_0_765366865 as $t;
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
            let z5 = (z3 + z4) * FIX_1_175875602 as $t;
            let mut t0 = t0 * FIX_0_298631336 as $t;
            let mut t1 = t1 * FIX_2_053119869 as $t;
            let mut t2 = t2 * FIX_3_072711026 as $t;
            let mut t3 = t3 * FIX_1_501321110 as $t;
            let z1 = z1 * -(FIX_0_899976223 as $t);
            let z2 = z2 * -(FIX_2_562915447 as $t);
            let z3 = z3 * -(FIX_1_961570560 as $t) + z5;
            let z4 = z4 * -(FIX_0_390180644 as $t) + z5;
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
    };
}

butterfly!(butterfly, i64);

/// Dequantises and inverse-transforms one block (coefficients and quantisation
/// table in natural order) into 8 rows of `out` starting at `out[0]`, with row
/// stride `stride`.
pub(crate) fn idct_islow(coef: &[i16; 64], quant: &[u16; 64], out: &mut [u8], stride: usize) {
    if out.len() < 7 * stride + 8 {
        return;
    }
    if coef[1..].iter().all(|&c| c == 0) {
        // DC only: both passes reduce to one value (libjpeg's zero-AC shortcuts).
        let dc = i64::from(coef[0]) * i64::from(quant[0]);
        let v = range_limit(descale(dc << PASS1_BITS, PASS1_BITS + 3));
        for row in out.chunks_mut(stride).take(8) {
            row[..8].fill(v);
        }
        return;
    }
    // libjpeg keeps the work array as int.
    let mut ws = [0i32; 64];
    // Pass 1: columns -> work array, scaled by 2^PASS1_BITS.
    for col in 0..8 {
        let mut v = [0i64; 8];
        let mut ac = false;
        for (r, x) in v.iter_mut().enumerate() {
            let c = coef[r * 8 + col];
            ac |= r > 0 && c != 0;
            *x = i64::from(c) * i64::from(quant[r * 8 + col]);
        }
        if !ac {
            let dc = (v[0] << PASS1_BITS) as i32;
            for r in 0..8 {
                ws[r * 8 + col] = dc;
            }
            continue;
        }
        let o = butterfly(v);
        for r in 0..8 {
            ws[r * 8 + col] = descale(o[r], CONST_BITS - PASS1_BITS) as i32;
        }
    }
    // Pass 2: rows -> samples.
    for (w, dst) in ws.chunks_exact(8).zip(out.chunks_mut(stride)) {
        let dst = &mut dst[..8];
        if w[1..].iter().all(|&x| x == 0) {
            dst.fill(range_limit(descale(i64::from(w[0]), PASS1_BITS + 3)));
            continue;
        }
        let v = [
            i64::from(w[0]),
            i64::from(w[1]),
            i64::from(w[2]),
            i64::from(w[3]),
            i64::from(w[4]),
            i64::from(w[5]),
            i64::from(w[6]),
            i64::from(w[7]),
        ];
        let o = butterfly(v);
        for (d, x) in dst.iter_mut().zip(o) {
            *d = range_limit(descale(x, CONST_BITS + PASS1_BITS + 3));
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

    /// libjpeg's algorithm in i64 only, no shortcuts.
    fn reference(coef: &[i16; 64], quant: &[u16; 64]) -> [u8; 64] {
        let mut ws = [0i64; 64];
        for col in 0..8 {
            let v = std::array::from_fn(|r| {
                i64::from(coef[r * 8 + col]) * i64::from(quant[r * 8 + col])
            });
            for (r, x) in butterfly(v).into_iter().enumerate() {
                ws[r * 8 + col] = i64::from(descale(x, CONST_BITS - PASS1_BITS) as i32);
            }
        }
        let mut out = [0u8; 64];
        for row in 0..8 {
            let v = std::array::from_fn(|i| ws[row * 8 + i]);
            for (i, x) in butterfly(v).into_iter().enumerate() {
                out[row * 8 + i] = range_limit(descale(x, CONST_BITS + PASS1_BITS + 3));
            }
        }
        out
    }

    #[test]
    fn fast_paths_match_full_i64() {
        let mut seed = 7u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (seed >> 8) as i32
        };
        for trial in 0..3000 {
            let mut coef = [0i16; 64];
            let mut quant = [1u16; 64];
            let density = 1 + trial % 64;
            let range = [8, 200, 2000, 8191, 30000][trial % 5];
            for i in 0..64 {
                quant[i] = (1 + next().rem_euclid(if trial % 3 == 0 { 2 } else { 60 })) as u16;
                if next().rem_euclid(64) < density as i32 {
                    coef[i] = (next().rem_euclid(2 * range + 1) - range) as i16;
                }
            }
            let mut out = [0u8; 64];
            idct_islow(&coef, &quant, &mut out, 8);
            assert_eq!(out, reference(&coef, &quant), "trial {trial}");
        }
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
