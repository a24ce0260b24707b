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
    if kind != Kind::Baseline {
        // libjpeg's coef_bits: which bit of each coefficient the scans have reached.
        for &(ci, _, _) in &sel {
            let bits = &mut st.comps[ci].coef_bits;
            for k in band.0..=band.1.min(bits.len() - 1) {
                bits[k] = band.2 as i8;
            }
        }
    }
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
    // The band's bits on the `nonzero` masks (zigzag positions ss..=se).
    let band_bits = (u64::MAX >> (63 - band.1.min(63))) & (u64::MAX << band.0.min(63));
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
        if kind == Kind::AcRefine && eobrun > 0 {
            // Blocks of a refinement scan's end-of-band run read a correction bit for each
            // nonzero coefficient of the band, and nothing else: skip those that have none
            // on their mask, up to the next restart.
            let c = &st.comps[sel[0].0];
            let end = match st.restart {
                0 => total,
                r => (m - m % r + r).min(total),
            };
            let start = m;
            while m < end && eobrun > 0 {
                let i = (m / mcux) * c.blocks_w + m % mcux;
                if c.nonzero.get(i).is_some_and(|&z| z & band_bits != 0) {
                    break;
                }
                eobrun -= 1;
                m += 1;
            }
            if m > start {
                continue;
            }
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
                    let i = by * c.blocks_w + bx;
                    let (Some(block), Some(nonzero)) = (c.blocks.get_mut(i), c.nonzero.get_mut(i))
                    else {
                        return Err(corrupt("block outside the image"));
                    };
                    #[cfg(test)]
                    SLOW_BLOCKS.with(|n| n.set(n.get() + 1));
                    match (kind, dc, ac) {
                        (Kind::DcFirst, Some(dc), _) => {
                            dc_first(&mut reader, dc, &mut preds[si], band.2, block)?
                        }
                        (Kind::DcRefine, _, _) => dc_refine(&mut reader, band.2, block),
                        (Kind::AcFirst, _, Some(ac)) => {
                            ac_first(&mut reader, ac, band, &mut eobrun, (block, nonzero))?
                        }
                        (Kind::AcRefine, _, Some(ac)) => {
                            ac_refine(&mut reader, ac, band, &mut eobrun, (block, nonzero))?
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

#[cfg(test)]
thread_local! {
    /// Progressive blocks decoded one by one (not skipped in an end-of-band run).
    pub(super) static SLOW_BLOCKS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
mod tests {
    use super::SLOW_BLOCKS;

    /// Bits MSB first, `FF` stuffed.
    #[derive(Default)]
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }

    impl Bits {
        fn put(&mut self, v: u32, n: u32) {
            self.acc = (self.acc << n) | u64::from(v & ((1 << n) - 1));
            self.n += n;
            while self.n >= 8 {
                self.n -= 8;
                let b = (self.acc >> self.n) as u8;
                self.out.push(b);
                if b == 0xFF {
                    self.out.push(0);
                }
            }
        }
        fn finish(mut self) -> Vec<u8> {
            let pad = (8 - self.n % 8) % 8;
            self.put((1 << pad) - 1, pad);
            self.out
        }
    }

    fn seg(f: &mut Vec<u8>, code: u8, p: &[u8]) {
        f.extend([0xFF, code]);
        f.extend(((p.len() + 2) as u16).to_be_bytes());
        f.extend(p);
    }

    /// A grey progressive `w x h` file: a DC scan of zeros, then `n` AC scans (first scans,
    /// or refinements if `refine`) made of end-of-band runs over every block.
    fn eob_run_scans(w: u16, h: u16, n: usize, refine: bool) -> Vec<u8> {
        let blocks = usize::from(w.div_ceil(8)) * usize::from(h.div_ceil(8));
        let mut f = vec![0xFF, 0xD8];
        seg(&mut f, 0xDB, &[[0u8].as_slice(), &[1; 64]].concat());
        seg(
            &mut f,
            0xC4,
            &[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        );
        let mut ac = vec![0x10, 0, 0, 0, 15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        ac.extend((0..15).map(|r| r << 4));
        seg(&mut f, 0xC4, &ac);
        let mut sof = vec![8];
        sof.extend(h.to_be_bytes());
        sof.extend(w.to_be_bytes());
        sof.extend([1, 1, 0x11, 0]);
        seg(&mut f, 0xC2, &sof);
        seg(&mut f, 0xDA, &[1, 1, 0, 0, 0, 0]);
        let mut dc = Bits::default();
        for _ in 0..blocks {
            dc.put(0, 1);
        }
        f.extend(dc.finish());
        let mut runs = Bits::default();
        let mut left = blocks;
        while left > 0 {
            let run = left.min(32767);
            let k = usize::BITS - 1 - run.leading_zeros();
            runs.put(k, 4); // EOBk: code k of 4 bits
            runs.put((run - (1 << k)) as u32, k);
            left -= run;
        }
        let runs = runs.finish();
        for _ in 0..n {
            seg(
                &mut f,
                0xDA,
                &[1, 1, 0, 1, 63, if refine { 0x10 } else { 0 }],
            );
            f.extend(&runs);
        }
        f.extend([0xFF, 0xD9]);
        f
    }

    /// Blocks inside end-of-band runs cost no per-block decoding (issue #21's work
    /// budget): 399 AC scans of one run over 1,024 blocks decode one block each, where a
    /// pass per scan would decode 408,576.
    #[test]
    fn end_of_band_runs_are_skipped_not_decoded() {
        for refine in [false, true] {
            let f = eob_run_scans(256, 256, 399, refine);
            SLOW_BLOCKS.with(|n| n.set(0));
            let d = super::super::decode(&f, 1 << 20).unwrap();
            assert_eq!((d.width, d.height, d.channels), (256, 256, 1));
            assert!(d.data.iter().all(|&v| v == 128));
            let slow = SLOW_BLOCKS.with(|n| n.get());
            // The DC scan's 1,024 blocks are decoded one by one; of each AC scan, only the
            // block that reads the run's symbol.
            assert_eq!(slow, 1024 + 399, "refine = {refine}");
        }
    }
}
