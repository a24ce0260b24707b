//! Decoding one scan (SOS segment + entropy-coded data) into the components'
//! coefficient blocks: baseline, or one progressive pass; restart intervals.

use super::huffman::{decode_block, BitReader};
use super::idct::idct_islow;
use super::progressive::{ac_first, ac_refine, dc_first, dc_refine};
use super::{corrupt, JpegErr, State};

/// What one scan codes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Baseline,
    DcFirst,
    DcRefine,
    AcFirst,
    AcRefine,
}

/// Parses the SOS header: component indices with their (DC, AC) table ids,
/// and the scan kind with `(Ss, Se, Al)`.
type ScanHeader = (Vec<(usize, usize, usize)>, Kind, (usize, usize, u8));

fn parse_header(st: &State, seg: &[u8]) -> Result<ScanHeader, JpegErr> {
    let ns = usize::from(*seg.first().ok_or_else(|| corrupt("empty SOS"))?);
    if ns == 0 || ns > 4 || seg.len() < 1 + 2 * ns + 3 || st.comps.is_empty() {
        return Err(corrupt("bad SOS header"));
    }
    let (ss, se, a) = (seg[1 + 2 * ns], seg[2 + 2 * ns], seg[3 + 2 * ns]);
    let (ss, se, ah, al) = (usize::from(ss), usize::from(se), a >> 4, a & 15);
    let kind = match (st.progressive, ss, ah) {
        (false, _, _) if ss == 0 && se == 63 && a == 0 => Kind::Baseline,
        (false, _, _) => return Err(JpegErr::Unsupported),
        (true, 0, 0) if se == 0 => Kind::DcFirst,
        (true, 0, _) if se == 0 => Kind::DcRefine,
        (true, 1..=63, 0) if ns == 1 && se >= ss && se <= 63 => Kind::AcFirst,
        (true, 1..=63, _) if ns == 1 && se >= ss && se <= 63 => Kind::AcRefine,
        _ => return Err(corrupt("bad progressive scan parameters")),
    };
    if al > 13 {
        return Err(corrupt("successive approximation shift too large"));
    }
    let mut sel = Vec::with_capacity(ns);
    for i in 0..ns {
        let (id, tables) = (seg[1 + 2 * i], seg[2 + 2 * i]);
        let ci = st
            .comps
            .iter()
            .position(|c| c.id == id)
            .ok_or_else(|| corrupt("scan names an unknown component"))?;
        let (td, ta) = (usize::from(tables >> 4), usize::from(tables & 15));
        let need_dc = matches!(kind, Kind::Baseline | Kind::DcFirst);
        let need_ac = matches!(kind, Kind::Baseline | Kind::AcFirst | Kind::AcRefine);
        if td > 3 || ta > 3 || (need_dc && st.dc[td].is_none()) || (need_ac && st.ac[ta].is_none())
        {
            return Err(corrupt("scan uses a missing Huffman table"));
        }
        sel.push((ci, td, ta));
    }
    Ok((sel, kind, (ss, se, al)))
}

/// Reads the SOS header `seg` and decodes the scan's entropy-coded `data` (up to the
/// marker that ends it, as `markers.rs` found it).
pub(super) fn read_scan(st: &mut State, seg: &[u8], data: &[u8]) -> Result<(), JpegErr> {
    let (sel, kind, band) = parse_header(st, seg)?;
    st.allocate();
    for &(ci, _, _) in &sel {
        let tq = st.comps[ci].tq;
        if st.comps[ci].quant.is_none() {
            st.comps[ci].quant = st.quant[tq];
        }
    }
    let mut reader = BitReader::new(data, 0);
    let mut preds = [0i32; 4];
    let mut eobrun = 0u32;
    let single = sel.len() == 1;
    let (mcux, mcuy) = if single {
        let c = &st.comps[sel[0].0];
        (c.dw.div_ceil(8), c.dh.div_ceil(8))
    } else {
        (
            st.width.div_ceil(8 * st.hmax),
            st.height.div_ceil(8 * st.vmax),
        )
    };
    let total = mcux * mcuy;
    let mut coef = [0i16; 64];
    let mut m = 0;
    while m < total {
        if st.restart > 0 && m > 0 && m % st.restart == 0 {
            reader.restart()?;
            preds = [0; 4];
            eobrun = 0;
        }
        if kind == Kind::AcFirst && eobrun > 0 {
            // Blocks inside an end-of-band run of a first AC scan read no bits and change
            // nothing: skip the run (up to the next restart) at once, so that a scan of a
            // few bytes does not cost a pass over every block.
            let to_restart = match st.restart {
                0 => total - m,
                r => r - m % r,
            };
            let n = (eobrun as usize).min(to_restart).min(total - m);
            eobrun -= n as u32;
            m += n;
            continue;
        }
        let (my, mx) = (m / mcux, m % mcux);
        for (si, &(ci, td, ta)) in sel.iter().enumerate() {
            let c = &mut st.comps[ci];
            let (bh, bv) = if single { (1, 1) } else { (c.h, c.v) };
            for v in 0..bv {
                for h in 0..bh {
                    let (by, bx) = (my * bv + v, mx * bh + h);
                    let (dc, ac) = (st.dc[td].as_ref(), st.ac[ta].as_ref());
                    if let (Kind::Baseline, Some(dc), Some(ac)) = (kind, dc, ac) {
                        // Baseline: transform now, keep only samples.
                        let quant = c
                            .quant
                            .ok_or_else(|| corrupt("missing quantisation table"))?;
                        if by >= c.blocks_h || bx >= c.blocks_w {
                            return Err(corrupt("block outside the image"));
                        }
                        decode_block(&mut reader, dc, ac, &mut preds[si], &mut coef)?;
                        let stride = c.blocks_w * 8;
                        idct_islow(
                            &coef,
                            &quant,
                            &mut c.samples[by * 8 * stride + bx * 8..],
                            stride,
                        );
                        continue;
                    }
                    let Some(block) = c.blocks.get_mut(by * c.blocks_w + bx) else {
                        return Err(corrupt("block outside the image"));
                    };
                    match (kind, dc, ac) {
                        (Kind::DcFirst, Some(dc), _) => {
                            dc_first(&mut reader, dc, &mut preds[si], band.2, block)?
                        }
                        (Kind::DcRefine, _, _) => dc_refine(&mut reader, band.2, block),
                        (Kind::AcFirst, _, Some(ac)) => {
                            ac_first(&mut reader, ac, band, &mut eobrun, block)?
                        }
                        (Kind::AcRefine, _, Some(ac)) => {
                            ac_refine(&mut reader, ac, band, &mut eobrun, block)?
                        }
                        _ => return Err(corrupt("missing Huffman table")),
                    }
                }
            }
        }
        // Lookahead may see the next marker early; only bits actually read
        // past it (or past the end of the file) mean the data ran out.
        if reader.overrun > 0 {
            return Err(JpegErr::Truncated("entropy-coded data ends early"));
        }
        m += 1;
    }
    Ok(())
}
