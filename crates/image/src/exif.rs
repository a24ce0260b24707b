//! EXIF orientation: read tag 0x0112 from a TIFF-structured EXIF block and apply
//! it like Pillow's `ImageOps.exif_transpose`. Off unless the caller asks.
//!
//! Only IFD0's orientation tag is read; nothing else in EXIF is interpreted.

use super::RgbImage;

/// The orientation (1..=8) from raw EXIF data starting at the TIFF header
/// (an `Exif\0\0` prefix is skipped). `None` if absent or malformed.
pub(crate) fn orientation(exif: &[u8]) -> Option<u16> {
    let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
    let little = match tiff.get(..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |o: usize| -> Option<u16> {
        let b = tiff.get(o..o + 2)?;
        Some(if little {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |o: usize| -> Option<u32> {
        let b = tiff.get(o..o + 4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Some(if little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    for i in 0..count {
        let entry = ifd.checked_add(2 + 12 * i)?;
        if u16_at(entry)? == 0x0112 {
            let v = u16_at(entry + 8)?;
            return (1..=8).contains(&v).then_some(v);
        }
    }
    None
}

/// Applies an EXIF orientation: 2 mirror, 3 rotate 180, 4 flip, 5 transpose,
/// 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
pub(crate) fn apply_orientation(img: RgbImage, orientation: u16) -> RgbImage {
    let (w, h) = (img.width, img.height);
    let swap = orientation >= 5;
    if !(2..=8).contains(&orientation) {
        return img;
    }
    let (ow, oh) = if swap { (h, w) } else { (w, h) };
    let mut data = Vec::with_capacity(img.data.len());
    for oy in 0..oh {
        for ox in 0..ow {
            let (sx, sy) = match orientation {
                2 => (w - 1 - ox, oy),
                3 => (w - 1 - ox, h - 1 - oy),
                4 => (ox, h - 1 - oy),
                5 => (oy, ox),
                6 => (oy, h - 1 - ox),
                7 => (w - 1 - oy, h - 1 - ox),
                _ => (w - 1 - oy, ox),
            };
            let s = (sy * w + sx) * 3;
            data.extend_from_slice(&img.data[s..s + 3]);
        }
    }
    RgbImage {
        width: ow,
        height: oh,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_big_and_little_endian() {
        let be = [
            b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0,
        ];
        assert_eq!(orientation(&be), Some(6));
        let le = [
            b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 3, 0, 0, 0,
        ];
        assert_eq!(orientation(&le), Some(3));
        assert_eq!(orientation(&le[..10]), None);
    }

    #[test]
    fn rotate_cw_then_ccw_is_identity() {
        let img = RgbImage::new(3, 2, (0..18).collect()).unwrap();
        let r = apply_orientation(apply_orientation(img.clone(), 6), 8);
        assert_eq!(r, img);
    }
}
