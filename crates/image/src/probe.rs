//! Format sniffing and header parsing: which format a byte buffer is, and its
//! declared width and height, read before any decoder allocates pixel memory.
//!
//! It validates only what it needs (signature, IHDR; for JPEG the marker structure, walked
//! by the decoder's own walker); decoding proper is left to `decode.rs`. Every decoder
//! checks the limits again where it allocates: this check only adds to that.
//!
//! Not here: decoding, colour conversion.

use std::path::Path;

use crate::{Error, Result};

/// The encoded formats we decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Jpeg,
}

impl ImageFormat {
    /// Name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Png => "PNG",
            ImageFormat::Jpeg => "JPEG",
        }
    }
}

/// Format and declared size of an encoded image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub format: ImageFormat,
    pub width: u64,
    pub height: u64,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Reads the signature and header; checks zero size and the pixel limit.
pub(crate) fn probe(bytes: &[u8], path: &Path, max_pixels: u64) -> Result<Header> {
    let header = if bytes.is_empty() {
        return Err(Error::EmptyImage {
            path: path.to_path_buf(),
        });
    } else if bytes.starts_with(PNG_SIGNATURE) {
        probe_png(bytes, path)?
    } else if bytes.starts_with(&[0xFF, 0xD8]) {
        probe_jpeg(bytes, path)?
    } else {
        return Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            format: sniff_other(bytes),
        });
    };
    if header.width == 0 || header.height == 0 {
        return Err(Error::ZeroSizedImage {
            path: path.to_path_buf(),
            width: header.width,
            height: header.height,
        });
    }
    if header.width.saturating_mul(header.height) > max_pixels {
        return Err(Error::TooManyPixels {
            path: path.to_path_buf(),
            width: header.width,
            height: header.height,
            max_pixels,
        });
    }
    Ok(header)
}

/// Names common formats we do not decode, so the error says what the file is.
fn sniff_other(bytes: &[u8]) -> String {
    let known: [(&[u8], &str); 6] = [
        (b"GIF87a", "GIF"),
        (b"GIF89a", "GIF"),
        (b"BM", "BMP"),
        (b"II*\0", "TIFF"),
        (b"MM\0*", "TIFF"),
        (b"qoif", "QOI"),
    ];
    for (magic, name) in known {
        if bytes.starts_with(magic) {
            return name.to_string();
        }
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return "WebP".to_string();
    }
    if bytes.starts_with(&PNG_SIGNATURE[..4]) {
        return "PNG with a damaged signature".to_string();
    }
    let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("unknown (first bytes {})", head.join(" "))
}

fn truncated(path: &Path, format: ImageFormat, reason: &str) -> Error {
    Error::TruncatedImage {
        path: path.to_path_buf(),
        format: format.name(),
        reason: reason.to_string(),
    }
}

fn corrupt(path: &Path, format: ImageFormat, reason: &str) -> Error {
    Error::CorruptImage {
        path: path.to_path_buf(),
        format: format.name(),
        reason: reason.to_string(),
    }
}

fn be_u32(b: &[u8]) -> u64 {
    u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// PNG: the first chunk must be a 13-byte IHDR; width and height are its first 8 bytes.
fn probe_png(bytes: &[u8], path: &Path) -> Result<Header> {
    let f = ImageFormat::Png;
    if bytes.len() < 24 {
        return Err(truncated(path, f, "file ends inside the IHDR chunk"));
    }
    if &bytes[12..16] != b"IHDR" {
        return Err(corrupt(path, f, "first chunk is not IHDR"));
    }
    Ok(Header {
        format: f,
        width: be_u32(&bytes[16..20]),
        height: be_u32(&bytes[20..24]),
    })
}

/// JPEG: the frame header as the decoder will read it, found by the same marker walker
/// (`jpeg/markers.rs`), which also enforces the scan and table limits.
fn probe_jpeg(bytes: &[u8], path: &Path) -> Result<Header> {
    let survey =
        crate::jpeg::markers::survey(bytes).map_err(|e| crate::decode::jpeg_error(path, e))?;
    Ok(Header {
        format: ImageFormat::Jpeg,
        height: u64::from(survey.frame.height),
        width: u64::from(survey.frame.width),
    })
}

/// The payload of a PNG's `eXIf` chunk, found by walking the chunk list (the
/// `png` crate does not parse it). `None` if absent or the list is damaged.
pub(crate) fn png_exif(bytes: &[u8]) -> Option<&[u8]> {
    let mut pos = PNG_SIGNATURE.len();
    while let Some(head) = bytes.get(pos..pos + 8) {
        let len = usize::try_from(be_u32(&head[..4])).ok()?;
        let data = bytes.get(pos + 8..pos.checked_add(8 + len)?)?;
        match &head[4..8] {
            b"eXIf" => return Some(data),
            b"IEND" => return None,
            _ => pos = pos.checked_add(12 + len)?,
        }
    }
    None
}
