//! Our own JPEG decoder, bit-exact with libjpeg-turbo's default
//! decompression (as Pillow uses it): islow IDCT, fancy upsampling, libjpeg's
//! colour-space rules and YCbCr tables. It covers sequential Huffman files
//! and progressive (SOF2) files, 8-bit, 1/3/4 components, interleaved or not,
//! restart markers; anything else (arithmetic, lossless, 12-bit, fractional
//! sampling ratios) returns
//! [`JpegErr::Unsupported`] and the caller falls back to `jpeg-decoder`.
//!
//! Before anything is allocated, the whole marker structure is walked (`markers.rs`, the
//! same walker the probe uses) and the frame is checked against the pixel limit; scans and
//! table definitions are capped there (the work budget of `docs/reliability.md`).
//!
//! Output is in Pillow's mode for the file: `L`, `RGB`, or `CMYK` (after
//! Pillow's `CMYK;I` inversion).
//!
//! Not here: RGB conversion of CMYK and grey (`convert.rs`), the probe (`probe.rs`).

mod huffman;
mod idct;
pub(crate) mod markers;
mod progressive;
mod scan;
mod smooth;
mod upsample;

use huffman::{Huffman, ZIGZAG};
use markers::{Frame, Markers, Segment};
use scan::read_scan;
use upsample::{Plane, Upsampler, YccTables};

/// Why our decoder stopped.
#[derive(Debug)]
pub(crate) enum JpegErr {
    /// Not a baseline feature set: let `jpeg-decoder` try.
    Unsupported,
    Truncated(&'static str),
    Corrupt(String),
    /// The frame's size: zero, or more pixels than `max_pixels`.
    FrameSize {
        width: u16,
        height: u16,
        max_pixels: u64,
    },
    /// More of something than the work budget allows (see `markers.rs`).
    Limit {
        what: &'static str,
        max: u64,
    },
}

/// A decoded image in Pillow's mode: 1 (L), 3 (RGB) or 4 (CMYK) channels.
pub(crate) struct Decoded {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<u8>,
    /// The APP1 `Exif` payload (TIFF header onwards), if any.
    pub exif: Option<Vec<u8>>,
}

struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    /// The quantisation table as it was when the component's first scan
    /// started (libjpeg's `latch_quant_tables`); later DQTs do not change it.
    quant: Option<[u16; 64]>,
    /// The MCU-padded block grid.
    blocks_w: usize,
    blocks_h: usize,
    /// Progressive files: coefficients, transformed once all scans are read.
    blocks: Vec<[i16; 64]>,
    /// Progressive files, per block: bit k set if AC coefficient k (zigzag order) has been
    /// written, a superset of the nonzero ones. A refinement scan's end-of-band run needs
    /// correction bits only where a coefficient is nonzero: blocks without any in the band
    /// are skipped on this mask instead of a pass over their 63 coefficients.
    nonzero: Vec<u64>,
    /// Progressive files: the successive-approximation bit (Al) of the last scan that
    /// coded each of zigzag coefficients 0-9, -1 if none did (libjpeg's `coef_bits`);
    /// block smoothing (`smooth.rs`) estimates the coefficients still short of bits.
    coef_bits: [i8; 10],
    /// Samples (`blocks_w * 8` per row): baseline blocks are transformed as
    /// they are decoded, so their coefficients are never stored.
    samples: Vec<u8>,
    /// Real samples (libjpeg's `downsampled_width/height`).
    dw: usize,
    dh: usize,
}

#[derive(Default)]
struct State {
    quant: [Option<[u16; 64]>; 4],
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
    comps: Vec<Component>,
    width: usize,
    height: usize,
    hmax: usize,
    vmax: usize,
    restart: usize,
    progressive: bool,
    /// Whether `allocate` has run.
    allocated: bool,
    /// The pixel limit, which also bounds the components' buffers (see `read_sof`).
    max_pixels: u64,
    jfif: bool,
    adobe: Option<u8>,
    exif: Option<Vec<u8>>,
}

fn be16(b: &[u8], i: usize) -> Result<usize, JpegErr> {
    match b.get(i..i + 2) {
        Some(s) => Ok(usize::from(u16::from_be_bytes([s[0], s[1]]))),
        None => Err(JpegErr::Truncated("marker segment cut short")),
    }
}

fn corrupt(msg: &str) -> JpegErr {
    JpegErr::Corrupt(msg.to_string())
}

/// Decodes a JPEG; see the module docs for what is covered. `max_pixels` is checked
/// against the frame header here, before anything is allocated for the frame, whatever a
/// probe checked before.
pub(crate) fn decode(bytes: &[u8], max_pixels: u64) -> Result<Decoded, JpegErr> {
    // The whole marker structure first: the frame, the scan count and the table
    // definitions are checked before any pixel memory exists.
    let survey = markers::survey(bytes)?;
    check_frame(&survey.frame, max_pixels)?;
    if survey.scans == 0 {
        return Err(corrupt("no image data"));
    }
    let mut st = State {
        max_pixels,
        ..State::default()
    };
    let mut walk = Markers::new(bytes);
    while let Some(seg) = walk.next_segment()? {
        match seg {
            Segment::Scan { header, data } => read_scan(&mut st, header, data)?,
            Segment::Marker { code, payload } => read_marker(&mut st, code, payload)?,
        }
    }
    if st.comps.is_empty() {
        return Err(corrupt("no image data"));
    }
    finish(st)
}

/// The frame header as declared, against the limits: pixels first (whatever the coding
/// process, so an unsupported frame is refused for its size too), then what we decode.
fn check_frame(f: &Frame, max_pixels: u64) -> Result<(), JpegErr> {
    if f.width == 0 || f.height == 0 {
        // libjpeg: "Empty JPEG image (DNL not supported)".
        return Err(JpegErr::FrameSize {
            width: f.width,
            height: f.height,
            max_pixels,
        });
    }
    if f.pixels() > max_pixels {
        return Err(JpegErr::FrameSize {
            width: f.width,
            height: f.height,
            max_pixels,
        });
    }
    if f.components == 0 {
        return Err(corrupt("frame header with no components"));
    }
    // 8 and 12 bits for DCT processes, 2 to 16 for lossless.
    if !(2..=16).contains(&f.precision) {
        return Err(corrupt("bad sample precision"));
    }
    Ok(())
}

/// One marker segment other than a scan.
fn read_marker(st: &mut State, code: u8, seg: &[u8]) -> Result<(), JpegErr> {
    match code {
        0xC0..=0xC2 => {
            st.progressive = code == 0xC2;
            read_sof(st, seg)?
        }
        // Lossless, hierarchical, arithmetic coding (a second frame header never gets
        // here: `survey` refuses it).
        _ if markers::is_sof(code) => return Err(JpegErr::Unsupported),
        0xCC => return Err(JpegErr::Unsupported), // arithmetic conditioning
        0xC4 => read_dht(st, seg)?,
        0xDB => read_dqt(st, seg)?,
        0xDD => st.restart = be16(seg, 0)?,
        // DNL: ignored, as libjpeg does; a frame of height 0 was refused before.
        0xDC => {}
        0xE0 if seg.starts_with(b"JFIF\0") => st.jfif = true,
        0xEE if seg.starts_with(b"Adobe") && seg.len() >= 12 => st.adobe = Some(seg[11]),
        0xE1 if seg.starts_with(b"Exif\0\0") && st.exif.is_none() => {
            st.exif = Some(seg[6..].to_vec())
        }
        _ => {}
    }
    Ok(())
}

fn read_sof(st: &mut State, seg: &[u8]) -> Result<(), JpegErr> {
    if seg.len() < 6 || seg[0] != 8 {
        return Err(JpegErr::Unsupported);
    }
    st.height = be16(seg, 1)?;
    st.width = be16(seg, 3)?;
    let n = usize::from(seg[5]);
    if !matches!(n, 1 | 3 | 4) || seg.len() < 6 + 3 * n || st.width == 0 || st.height == 0 {
        return Err(JpegErr::Unsupported);
    }
    for i in 0..n {
        let c = &seg[6 + 3 * i..9 + 3 * i];
        let (h, v) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || c[2] > 3 {
            return Err(corrupt("bad sampling factor or table index"));
        }
        st.comps.push(Component {
            id: c[0],
            h,
            v,
            tq: usize::from(c[2]),
            quant: None,
            blocks_w: 0,
            blocks_h: 0,
            blocks: Vec::new(),
            nonzero: Vec::new(),
            coef_bits: [-1; 10],
            samples: Vec::new(),
            dw: 0,
            dh: 0,
        });
    }
    st.hmax = st.comps.iter().map(|c| c.h).max().unwrap_or(1);
    st.vmax = st.comps.iter().map(|c| c.v).max().unwrap_or(1);
    let single = n == 1;
    let mcux = st.width.div_ceil(8 * if single { 1 } else { st.hmax });
    let mcuy = st.height.div_ceil(8 * if single { 1 } else { st.vmax });
    for c in &mut st.comps {
        // Integral ratios only (libjpeg: JERR_FRACT_SAMPLE_NOTIMPL).
        if (st.hmax / c.h) * c.h != st.hmax || (st.vmax / c.v) * c.v != st.vmax {
            return Err(JpegErr::Unsupported);
        }
        c.dw = (st.width * c.h).div_ceil(st.hmax);
        c.dh = (st.height * c.v).div_ceil(st.vmax);
        let (bw, bh) = if single {
            (mcux, mcuy)
        } else {
            (mcux * c.h, mcuy * c.v)
        };
        c.blocks_w = bw;
        c.blocks_h = bh;
    }
    // The components' buffers, padded to whole MCUs: 64 bytes of samples a block, plus 128
    // of coefficients and 8 of mask in progressive files. At most
    // COMPONENT_BYTES_PER_PIXEL x max_pixels (what 4 full-size progressive components
    // need): padding can multiply a thin frame's size (a 1-pixel-wide frame with 4x4
    // sampling is 32 samples wide), and memory is bounded by the limit, not by the frame.
    let per_block = if st.progressive { 64 + 128 + 8 } else { 64 };
    let bytes: u64 = st
        .comps
        .iter()
        .map(|c| (c.blocks_w * c.blocks_h) as u64 * per_block)
        .sum();
    let max = st.max_pixels.saturating_mul(COMPONENT_BYTES_PER_PIXEL);
    if bytes > max {
        return Err(JpegErr::Limit {
            what: "bytes of component buffers (samples padded to whole MCUs)",
            max,
        });
    }
    Ok(())
}

/// Bytes of component buffers allowed per pixel of the limit: 4 components x (1 sample +
/// 2 coefficient bytes + 1/8 of mask), a progressive CMYK frame at full resolution.
pub(crate) const COMPONENT_BYTES_PER_PIXEL: u64 = 13;

impl State {
    /// Allocates the components' buffers when the first scan starts (not at the frame
    /// header: a file without scan data never gets pixel memory).
    fn allocate(&mut self) {
        if self.allocated {
            return;
        }
        self.allocated = true;
        for c in &mut self.comps {
            let (bw, bh) = (c.blocks_w, c.blocks_h);
            if self.progressive {
                c.blocks = vec![[0i16; 64]; bw * bh];
                c.nonzero = vec![0u64; bw * bh];
            }
            // 128 = what all-zero coefficients transform to (a component no scan covers).
            c.samples = vec![128u8; bw * 8 * bh * 8];
        }
    }
}

fn read_dht(st: &mut State, mut seg: &[u8]) -> Result<(), JpegErr> {
    while !seg.is_empty() {
        if seg.len() < 17 {
            return Err(corrupt("short DHT segment"));
        }
        let (class, id) = (seg[0] >> 4, usize::from(seg[0] & 15));
        let mut counts = [0u8; 16];
        counts.copy_from_slice(&seg[1..17]);
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        let Some(values) = seg.get(17..17 + total) else {
            return Err(corrupt("short DHT segment"));
        };
        if id > 3 || class > 1 {
            return Err(corrupt("bad Huffman table id"));
        }
        let table = Huffman::new(&counts, values)?;
        if class == 0 {
            st.dc[id] = Some(table);
        } else {
            st.ac[id] = Some(table);
        }
        seg = &seg[17 + total..];
    }
    Ok(())
}

fn read_dqt(st: &mut State, mut seg: &[u8]) -> Result<(), JpegErr> {
    while !seg.is_empty() {
        let (precision, id) = (seg[0] >> 4, usize::from(seg[0] & 15));
        let size = if precision == 0 { 64 } else { 128 };
        if id > 3 || seg.len() < 1 + size {
            return Err(corrupt("bad DQT segment"));
        }
        let mut q = [0u16; 64];
        for (k, &natural) in ZIGZAG.iter().enumerate() {
            q[natural] = if precision == 0 {
                u16::from(seg[1 + k])
            } else {
                u16::from_be_bytes([seg[1 + 2 * k], seg[2 + 2 * k]])
            };
        }
        st.quant[id] = Some(q);
        seg = &seg[1 + size..];
    }
    Ok(())
}

/// IDCT (progressive files), upsampling and colour conversion.
fn finish(mut st: State) -> Result<Decoded, JpegErr> {
    let (w, h) = (st.width, st.height);
    let smooth = st.progressive && smooth::smoothing_ok(&st.comps);
    let imcu_rows = h.div_ceil(8 * st.vmax);
    let mut planes = Vec::with_capacity(st.comps.len());
    for c in &mut st.comps {
        let stride = c.blocks_w * 8;
        let rows = c.blocks_h * 8;
        // A component no scan covered has no quantisation table latched; libjpeg then
        // transforms with a zero table, giving 128 everywhere, which its samples hold.
        if let (false, Some(quant)) = (c.blocks.is_empty(), c.quant) {
            // An incomplete progressive file: libjpeg-turbo smooths its real blocks.
            let mut samples = std::mem::take(&mut c.samples);
            let smoother = smooth.then(|| smooth::Smoother::new(c, imcu_rows));
            for (i, block) in c.blocks.iter().enumerate() {
                let (by, bx) = (i / c.blocks_w, i % c.blocks_w);
                let smoothed = match &smoother {
                    Some(s) if s.is_real(bx, by) => s.block(bx, by),
                    _ => *block,
                };
                idct::idct_islow(
                    &smoothed,
                    &quant,
                    &mut samples[by * 8 * stride + bx * 8..],
                    stride,
                );
            }
            c.samples = samples;
        }
        if c.dw == 0 || c.dh == 0 || c.dw > stride || c.dh > rows {
            return Err(corrupt("component smaller than the frame"));
        }
        planes.push(Plane {
            data: std::mem::take(&mut c.samples),
            stride,
            w: c.dw,
            h: c.dh,
        });
    }
    let mut ups: Vec<Upsampler<'_>> = planes
        .iter()
        .zip(&st.comps)
        .map(|(p, c)| Upsampler::new(p, st.hmax / c.h, st.vmax / c.v))
        .collect();
    let ids: Vec<u8> = st.comps.iter().map(|c| c.id).collect();
    let convert = Convert::new(&st, &ids);
    let n = convert.channels();
    let mut out = vec![0u8; w * h * n];
    let mut rows = vec![vec![0u8; w]; ups.len()];
    for (oy, dst) in out.chunks_exact_mut(w * n).enumerate() {
        for (u, r) in ups.iter_mut().zip(rows.iter_mut()) {
            u.row(oy, r);
        }
        convert.row(&rows, dst);
    }
    Ok(Decoded {
        width: w,
        height: h,
        channels: n,
        data: out,
        exif: st.exif.clone(),
    })
}

/// The colour conversion libjpeg + Pillow apply, chosen once per image.
enum Convert {
    Gray,
    Rgb,
    Ycc(YccTables),
    Cmyk,
    Ycck(YccTables),
}

impl Convert {
    /// libjpeg's `default_decompress_parms`: 3 components are YCbCr if JFIF,
    /// else by the Adobe transform flag, else unless the ids are 'R','G','B';
    /// 4 components are YCCK if the Adobe flag is non-zero, else CMYK.
    fn new(st: &State, ids: &[u8]) -> Self {
        match ids.len() {
            1 => Convert::Gray,
            3 => {
                let ycc = if st.jfif {
                    true
                } else if let Some(flag) = st.adobe {
                    flag != 0
                } else {
                    ids != [b'R', b'G', b'B']
                };
                if ycc {
                    Convert::Ycc(YccTables::new())
                } else {
                    Convert::Rgb
                }
            }
            _ if matches!(st.adobe, Some(flag) if flag != 0) => Convert::Ycck(YccTables::new()),
            _ => Convert::Cmyk,
        }
    }

    fn channels(&self) -> usize {
        match self {
            Convert::Gray => 1,
            Convert::Rgb | Convert::Ycc(_) => 3,
            Convert::Cmyk | Convert::Ycck(_) => 4,
        }
    }

    /// One output row from the components' full-resolution rows. CMYK comes
    /// out as Pillow holds it after its `CMYK;I` inversion; YCCK as libjpeg's
    /// CMYK (C = 255 - R, ...) inverted back by Pillow, i.e. (R, G, B, 255 - K).
    fn row(&self, rows: &[Vec<u8>], dst: &mut [u8]) {
        match self {
            Convert::Gray => dst.copy_from_slice(&rows[0][..dst.len()]),
            Convert::Rgb => {
                let src = rows[0].iter().zip(&rows[1]).zip(&rows[2]);
                for (px, ((&a, &b), &c)) in dst.chunks_exact_mut(3).zip(src) {
                    px.copy_from_slice(&[a, b, c]);
                }
            }
            Convert::Ycc(t) => {
                let src = rows[0].iter().zip(&rows[1]).zip(&rows[2]);
                for (px, ((&y, &cb), &cr)) in dst.chunks_exact_mut(3).zip(src) {
                    px.copy_from_slice(&t.rgb(y, cb, cr));
                }
            }
            Convert::Cmyk => {
                let src = rows[0].iter().zip(&rows[1]).zip(&rows[2]).zip(&rows[3]);
                for (px, (((&c, &m), &y), &k)) in dst.chunks_exact_mut(4).zip(src) {
                    px.copy_from_slice(&[255 - c, 255 - m, 255 - y, 255 - k]);
                }
            }
            Convert::Ycck(t) => {
                let src = rows[0].iter().zip(&rows[1]).zip(&rows[2]).zip(&rows[3]);
                for (px, (((&y, &cb), &cr), &k)) in dst.chunks_exact_mut(4).zip(src) {
                    let [r, g, b] = t.rgb(y, cb, cr);
                    px.copy_from_slice(&[r, g, b, 255 - k]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, a grey `w x h` baseline frame, one scan of a few bytes, EOI.
    fn grey_frame(w: u16, h: u16) -> Vec<u8> {
        let mut f = vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8];
        f.extend(h.to_be_bytes());
        f.extend(w.to_be_bytes());
        f.extend([1, 1, 0x11, 0]);
        f.extend([0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 0, 0, 0xFF, 0xD9]);
        f
    }

    /// The decoder checks the frame against the limit itself, whatever a probe did before.
    #[test]
    fn decoder_checks_the_pixel_limit_itself() {
        let r = decode(&grey_frame(40, 40), 1000);
        assert!(
            matches!(
                r,
                Err(JpegErr::FrameSize {
                    width: 40,
                    height: 40,
                    max_pixels: 1000
                })
            ),
            "{:?}",
            r.err()
        );
        // Under the limit it gets as far as the missing tables.
        assert!(matches!(
            decode(&grey_frame(40, 40), 1600),
            Err(JpegErr::Corrupt(_))
        ));
    }

    /// Padding to whole MCUs counts against the limit: a 1 x 4000 YCbCr frame whose luma
    /// has 4x4 sampling has a luma plane 32 samples wide: 144,000 samples for 4,000 pixels.
    #[test]
    fn padded_buffers_are_bounded_by_the_limit() {
        let mut f = vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8];
        f.extend(4000u16.to_be_bytes());
        f.extend(1u16.to_be_bytes());
        f.extend([3, 1, 0x44, 0, 2, 0x11, 0, 3, 0x11, 0]);
        f.extend([0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 0, 0, 0xFF, 0xD9]);
        let r = decode(&f, 10_000);
        assert!(
            matches!(r, Err(JpegErr::Limit { max: 130_000, .. })),
            "{:?}",
            r.err()
        );
        assert!(matches!(decode(&f, 20_000), Err(JpegErr::Corrupt(_))));
    }
}
