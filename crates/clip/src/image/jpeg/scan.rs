//! Decoding one baseline scan (SOS segment + entropy-coded data) into the
//! components' coefficient blocks, with restart intervals.

use super::huffman::{decode_block, BitReader};
use super::{corrupt, JpegErr, State};

/// Reads the SOS header `seg` and the entropy data from `data_start`; returns
/// the position of the marker that follows the scan.
pub(super) fn read_scan(
    st: &mut State,
    bytes: &[u8],
    data_start: usize,
    seg: &[u8],
) -> Result<usize, JpegErr> {
    let ns = usize::from(*seg.first().ok_or_else(|| corrupt("empty SOS"))?);
    if ns == 0 || ns > 4 || seg.len() < 1 + 2 * ns + 3 || st.comps.is_empty() {
        return Err(corrupt("bad SOS header"));
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
        if td > 3 || ta > 3 || st.dc[td].is_none() || st.ac[ta].is_none() {
            return Err(corrupt("scan uses a missing Huffman table"));
        }
        sel.push((ci, td, ta));
    }
    let (ss, se) = (seg[1 + 2 * ns], seg[2 + 2 * ns]);
    if ss != 0 || se != 63 {
        return Err(JpegErr::Unsupported);
    }
    let mut reader = BitReader::new(bytes, data_start);
    let mut preds = [0i32; 4];
    let single = ns == 1;
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
    for m in 0..total {
        if st.restart > 0 && m > 0 && m % st.restart == 0 {
            reader.restart()?;
            preds = [0; 4];
        }
        let (my, mx) = (m / mcux, m % mcux);
        for (si, &(ci, td, ta)) in sel.iter().enumerate() {
            let (dc, ac) = match (&st.dc[td], &st.ac[ta]) {
                (Some(dc), Some(ac)) => (dc, ac),
                _ => return Err(corrupt("missing Huffman table")),
            };
            let c = &mut st.comps[ci];
            let (bh, bv) = if single { (1, 1) } else { (c.h, c.v) };
            for v in 0..bv {
                for h in 0..bh {
                    let (by, bx) = (my * bv + v, mx * bh + h);
                    let idx = by * c.blocks_w + bx;
                    let Some(slot) = c.blocks.get_mut(idx) else {
                        return Err(corrupt("block outside the image"));
                    };
                    decode_block(&mut reader, dc, ac, &mut preds[si], slot)?;
                }
            }
        }
        if reader.overrun > 0 {
            return Err(JpegErr::Truncated("file ends inside the scan data"));
        }
        if reader.marker.is_some()
            && m + 1 < total
            && !(st.restart > 0 && (m + 1) % st.restart == 0)
        {
            return Err(corrupt("marker inside the scan data"));
        }
    }
    // Find the marker after the scan.
    if reader.marker.is_some() {
        return Ok(reader.pos - 2);
    }
    let mut pos = reader.pos;
    while pos + 1 < bytes.len() {
        if bytes[pos] == 0xFF
            && bytes[pos + 1] != 0
            && bytes[pos + 1] != 0xFF
            && !(0xD0..=0xD7).contains(&bytes[pos + 1])
        {
            return Ok(pos);
        }
        pos += 1;
    }
    Err(JpegErr::Truncated("file ends after the scan data"))
}
