//! Progressive-JPEG entropy decoding (T.81 Annex G), following libjpeg's
//! `jdphuff.c` step by step: DC first/refinement scans and AC first/refinement
//! scans with end-of-band runs, successive-approximation bits and the
//! correction-bit rules for already-nonzero coefficients.

use super::huffman::{BitReader, Huffman, ZIGZAG};
use super::JpegErr;

/// Natural index of zigzag position `k`, with libjpeg's padding past 63.
#[inline]
fn natural(k: usize) -> usize {
    ZIGZAG[k.min(63)]
}

/// DC first scan: the DC difference, shifted left by `al`.
pub(crate) fn dc_first(
    r: &mut BitReader<'_>,
    dc: &Huffman,
    pred: &mut i32,
    al: u8,
    block: &mut [i16; 64],
) -> Result<(), JpegErr> {
    let s = r.symbol(dc)?;
    if s > 11 {
        return Err(JpegErr::Corrupt("DC magnitude over 11 bits".into()));
    }
    *pred = pred.wrapping_add(r.receive_extend(s));
    block[0] = (*pred << al) as i16;
    Ok(())
}

/// DC refinement: one bit, OR-ed in at bit `al`.
pub(crate) fn dc_refine(r: &mut BitReader<'_>, al: u8, block: &mut [i16; 64]) {
    if r.bits(1) != 0 {
        block[0] |= 1 << al;
    }
}

/// AC first scan over the band `ss..=se`; `nonzero` gets a bit for each coefficient set.
pub(crate) fn ac_first(
    r: &mut BitReader<'_>,
    ac: &Huffman,
    (ss, se, al): (usize, usize, u8),
    eobrun: &mut u32,
    (block, nonzero): (&mut [i16; 64], &mut u64),
) -> Result<(), JpegErr> {
    if *eobrun > 0 {
        *eobrun -= 1;
        return Ok(());
    }
    let mut k = ss;
    while k <= se {
        let rs = r.symbol(ac)?;
        let (run, s) = (usize::from(rs >> 4), rs & 15);
        if s != 0 {
            k += run;
            let v = r.receive_extend(s);
            block[natural(k)] = (v << al) as i16;
            *nonzero |= 1 << k.min(63);
        } else if run == 15 {
            k += 15;
        } else {
            *eobrun = (1 << run) - 1;
            if run > 0 {
                *eobrun += r.bits(run as u32);
            }
            break;
        }
        k += 1;
    }
    Ok(())
}

/// Adds a correction bit to an already-nonzero coefficient (away from zero).
#[inline]
fn correct(r: &mut BitReader<'_>, coef: &mut i16, p1: i16) {
    if r.bits(1) != 0 && (*coef & p1) == 0 {
        if *coef >= 0 {
            *coef = coef.wrapping_add(p1);
        } else {
            *coef = coef.wrapping_sub(p1);
        }
    }
}

/// AC refinement scan over `ss..=se` at bit `al` (libjpeg's
/// `decode_mcu_AC_refine`); `nonzero` gets a bit for each coefficient that becomes nonzero.
pub(crate) fn ac_refine(
    r: &mut BitReader<'_>,
    ac: &Huffman,
    (ss, se, al): (usize, usize, u8),
    eobrun: &mut u32,
    (block, nonzero): (&mut [i16; 64], &mut u64),
) -> Result<(), JpegErr> {
    let p1: i16 = 1 << al;
    let mut k = ss;
    if *eobrun == 0 {
        while k <= se {
            let rs = r.symbol(ac)?;
            let mut run = i32::from(rs >> 4);
            let s = rs & 15;
            let mut newval = 0i16;
            if s != 0 {
                newval = if r.bits(1) != 0 { p1 } else { -p1 };
            } else if run != 15 {
                *eobrun = 1 << run;
                if run > 0 {
                    *eobrun += r.bits(run as u32);
                }
                break;
            }
            // Skip already-nonzero coefficients (with correction bits) and
            // `run` zero ones; stop on the target zero coefficient.
            while k <= se {
                let coef = &mut block[natural(k)];
                if *coef != 0 {
                    correct(r, coef, p1);
                } else {
                    run -= 1;
                    if run < 0 {
                        break;
                    }
                }
                k += 1;
            }
            if newval != 0 {
                block[natural(k)] = newval;
                *nonzero |= 1 << k.min(63);
            }
            k += 1;
        }
    }
    if *eobrun > 0 {
        while k <= se {
            let coef = &mut block[natural(k)];
            if *coef != 0 {
                correct(r, coef, p1);
            }
            k += 1;
        }
        *eobrun -= 1;
    }
    Ok(())
}
