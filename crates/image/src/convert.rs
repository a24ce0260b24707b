//! Conversion of decoded samples to 8-bit RGB exactly as Pillow 11-13 does it
//! for `CLIPImageProcessor` (transformers 5, PIL backend).
//!
//! Reproduced behaviour (verified against Pillow 13, see `docs/preprocessing.md`):
//! - gray 1/2/4-bit is scaled to 0..255 (x255, x85, x17); gray is replicated;
//! - 16-bit gray (`I;16`) is clipped to 255, 16-bit RGB/RGBA/LA keep the high byte;
//! - a `tRNS` colour key is compared, after that conversion, against the key's
//!   low byte (so a 2/4-bit key almost never matches, a quirk we keep);
//! - palette indices past the palette are black, missing `tRNS` entries opaque;
//! - alpha is composited over white with Pillow's integer `alpha_composite`;
//! - CMYK becomes RGB with Pillow's `cmyk2rgb` (`MULDIV255` rounding).
//!
//! It does not decode anything: input is raw, unfiltered PNG scanlines or the
//! interleaved output of `jpeg-decoder`.

use super::AlphaMode;

/// One colour channel composited over opaque white, as Pillow's
/// `ImagingAlphaComposite` computes it (7 fractional bits, rounded /255).
#[inline]
pub(crate) fn composite_over_white(v: u8, a: u8) -> u8 {
    if a == 0 {
        return 255;
    }
    let a = u32::from(a);
    // dst alpha is 255, so blend = 255 * (255 - a) and outa255 = 255 * 255.
    let outa255 = a * 255 + 255 * (255 - a);
    let coef1 = a * 255 * 255 * 128 / outa255;
    let coef2 = 255 * 128 - coef1;
    let tmp = u32::from(v) * coef1 + 255 * coef2 + (0x80 << 7);
    (((tmp >> 8) + tmp) >> 8 >> 7) as u8
}

/// `a * b / 255` rounded, Pillow's `MULDIV255`.
#[inline]
fn muldiv255(a: u32, b: u32) -> u32 {
    let t = a * b + 128;
    ((t >> 8) + t) >> 8
}

/// Pillow's `cmyk2rgb`: `R = (255 - K) - C * (255 - K) / 255`, per channel.
pub(crate) fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let nk = 255 - u32::from(px[3]);
        for &c in &px[..3] {
            out.push(nk.saturating_sub(muldiv255(u32::from(c), nk)) as u8);
        }
    }
    out
}

/// Gray to RGB by replication.
pub(crate) fn gray_to_rgb(gray: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(gray.len() * 3);
    for &v in gray {
        out.extend_from_slice(&[v, v, v]);
    }
    out
}

/// PNG colour types, as in the IHDR (0, 2, 3, 4, 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PngColor {
    Gray,
    Rgb,
    Indexed,
    GrayAlpha,
    Rgba,
}

impl PngColor {
    fn samples(self) -> usize {
        match self {
            PngColor::Gray | PngColor::Indexed => 1,
            PngColor::GrayAlpha => 2,
            PngColor::Rgb => 3,
            PngColor::Rgba => 4,
        }
    }
}

/// Everything about a PNG's pixel layout that the conversion needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PngLayout<'a> {
    pub color: PngColor,
    pub depth: u8,
    pub width: usize,
    pub height: usize,
    /// Bytes per scanline in `raw` (no filter byte).
    pub line_size: usize,
    pub palette: Option<&'a [u8]>,
    pub trns: Option<&'a [u8]>,
}

/// The `sample_index`-th sample of a scanline at the given bit depth.
#[inline]
fn sample(row: &[u8], sample_index: usize, depth: u8) -> u16 {
    match depth {
        8 => u16::from(row[sample_index]),
        16 => u16::from_be_bytes([row[2 * sample_index], row[2 * sample_index + 1]]),
        _ => {
            let bit = sample_index * usize::from(depth);
            let shift = 8 - usize::from(depth) - bit % 8;
            let mask = (1u16 << depth) - 1;
            (u16::from(row[bit / 8]) >> shift) & mask
        }
    }
}

/// Gray sample to Pillow's 8-bit value: `1` and `L;2`/`L;4` scale, `I;16` clips.
#[inline]
fn gray8(s: u16, depth: u8) -> u8 {
    match depth {
        1 => (s * 255) as u8,
        2 => (s * 85) as u8,
        4 => (s * 17) as u8,
        8 => s as u8,
        _ => s.min(255) as u8,
    }
}

/// Colour sample to 8 bits: 16-bit keeps the high byte (`RGB;16B`, `LA;16B`).
#[inline]
fn hi8(s: u16, depth: u8) -> u8 {
    if depth == 16 {
        (s >> 8) as u8
    } else {
        s as u8
    }
}

/// The colour key from `tRNS`, as Pillow compares it: each value's low byte
/// (for 1-bit gray, Pillow first maps any non-zero key to 255). The `png` crate
/// keeps 16-bit keys as big-endian pairs and shortens 8-bit-or-less keys to
/// their low bytes; either way the low byte is what Pillow uses.
fn colour_key(layout: &PngLayout<'_>) -> Option<[u8; 3]> {
    let t = layout.trns?;
    let low = |i: usize| {
        if layout.depth == 16 {
            t.get(2 * i + 1).copied()
        } else {
            t.get(i).copied()
        }
    };
    match layout.color {
        PngColor::Gray => {
            let k = low(0)?;
            let k = if layout.depth == 1 && k != 0 { 255 } else { k };
            Some([k, k, k])
        }
        PngColor::Rgb => Some([low(0)?, low(1)?, low(2)?]),
        _ => None,
    }
}

/// Converts raw PNG scanlines to RGB the way Pillow + transformers 5 do.
pub(crate) fn png_to_rgb(raw: &[u8], layout: &PngLayout<'_>, alpha: AlphaMode) -> Vec<u8> {
    let (w, d) = (layout.width, layout.depth);
    let composite = alpha == AlphaMode::CompositeOverWhite;
    let key = if composite { colour_key(layout) } else { None };
    let palette = layout.palette.unwrap_or(&[]);
    let palette_alpha = if composite && layout.color == PngColor::Indexed {
        layout.trns
    } else {
        None
    };
    let has_alpha_channel = matches!(layout.color, PngColor::GrayAlpha | PngColor::Rgba);
    let n = layout.color.samples();
    let mut out = Vec::with_capacity(w * layout.height * 3);
    for row in raw.chunks_exact(layout.line_size).take(layout.height) {
        for x in 0..w {
            let s = |c: usize| sample(row, x * n + c, d);
            let (rgb, a) = match layout.color {
                PngColor::Gray => {
                    let v = gray8(s(0), d);
                    ([v, v, v], 255)
                }
                PngColor::Rgb => ([hi8(s(0), d), hi8(s(1), d), hi8(s(2), d)], 255),
                PngColor::Indexed => {
                    let i = usize::from(s(0));
                    let rgb = match palette.get(3 * i..3 * i + 3) {
                        Some(p) => [p[0], p[1], p[2]],
                        None => [0, 0, 0],
                    };
                    let a = palette_alpha.and_then(|t| t.get(i)).copied().unwrap_or(255);
                    (rgb, a)
                }
                PngColor::GrayAlpha => {
                    let v = hi8(s(0), d);
                    ([v, v, v], hi8(s(1), d))
                }
                PngColor::Rgba => ([hi8(s(0), d), hi8(s(1), d), hi8(s(2), d)], hi8(s(3), d)),
            };
            let a = match key {
                Some(k) if k == rgb => 0,
                _ => a,
            };
            if composite && (has_alpha_channel || palette_alpha.is_some() || key.is_some()) {
                out.extend(rgb.map(|v| composite_over_white(v, a)));
            } else {
                out.extend_from_slice(&rgb);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_opaque_is_identity_and_transparent_is_white() {
        for v in 0..=255u8 {
            assert_eq!(composite_over_white(v, 255), v);
            assert_eq!(composite_over_white(v, 0), 255);
        }
    }

    #[test]
    fn cmyk_extremes() {
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0]), vec![255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 0]), vec![0, 0, 0]);
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 255]), vec![0, 0, 0]);
    }

    #[test]
    fn packed_samples() {
        let row = [0b1011_0010u8];
        assert_eq!(sample(&row, 0, 2), 0b10);
        assert_eq!(sample(&row, 3, 2), 0b10);
        assert_eq!(sample(&row, 1, 4), 0b0010);
        assert_eq!(sample(&row, 2, 1), 1);
    }
}
