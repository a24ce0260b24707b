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
    /// An upper bound of the bytes decoding allocates (the input aside), for the memory
    /// budget (`budget.rs`); see `docs/reliability.md` for the per-pixel bounds.
    pub memory: u64,
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
    let memory = match header.format {
        ImageFormat::Png => header.memory,
        ImageFormat::Jpeg => header.memory.min(
            max_pixels.saturating_mul(crate::jpeg::COMPONENT_BYTES_PER_PIXEL)
                + (header.width * header.height).saturating_mul(7),
        ),
    };
    Ok(Header { memory, ..header })
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
    let (width, height) = (be_u32(&bytes[16..20]), be_u32(&bytes[20..24]));
    // The raw image (channels x bit depth, a filter byte a row), RGB, and row buffers.
    let depth = u64::from(bytes.get(24).copied().unwrap_or(16).clamp(1, 16));
    let channels = match bytes.get(25) {
        Some(0 | 3) => 1,
        Some(2) => 3,
        Some(4) => 2,
        _ => 4,
    };
    let row = (width * channels * depth).div_ceil(8) + 1;
    let memory = row
        .saturating_mul(height + 4)
        .saturating_add(width.saturating_mul(height).saturating_mul(3));
    Ok(Header {
        format: f,
        width,
        height,
        memory,
    })
}

/// JPEG: the frame header as the decoder will read it, found by the same marker walker
/// (`jpeg/markers.rs`), which also enforces the scan and table limits.
fn probe_jpeg(bytes: &[u8], path: &Path) -> Result<Header> {
    let survey =
        crate::jpeg::markers::survey(bytes).map_err(|e| crate::decode::jpeg_error(path, e))?;
    let f = survey.frame;
    let (width, height) = (u64::from(f.width), u64::from(f.height));
    // Component buffers (each at most the frame padded to 32-pixel MCUs; progressive:
    // coefficients and mask too), the output and RGB; `probe` caps the buffers at what the
    // decoder allows.
    let n = u64::from(f.components);
    let padded = (width + 32) * (height + 32) * n;
    let buffers = if f.code == 0xC2 {
        padded * 25 / 8
    } else {
        padded
    };
    Ok(Header {
        format: ImageFormat::Jpeg,
        height,
        width,
        memory: buffers + (n + 3) * width * height,
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
