//! The one error type of the `clip-image` crate and its `Result` alias.
//!
//! Every variant names the file (or the label given for in-memory bytes) and the reason.
//! Messages are one printable line: names and reasons that come from the file are escaped.

use std::fmt;
use std::path::PathBuf;

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong turning an encoded image into pixel values.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read from disk.
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file has no bytes at all.
    EmptyImage {
        /// The file.
        path: PathBuf,
    },
    /// The bytes are not a format we decode (e.g. GIF, BMP, WebP, or unknown).
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// What the bytes look like.
        format: String,
    },
    /// A PNG or JPEG feature we do not decode (e.g. lossless 16-bit JPEG).
    UnsupportedImage {
        /// The file.
        path: PathBuf,
        /// "PNG" or "JPEG".
        format: &'static str,
        /// The feature.
        reason: String,
    },
    /// The file ends before the image data is complete.
    TruncatedImage {
        /// The file.
        path: PathBuf,
        /// "PNG" or "JPEG".
        format: &'static str,
        /// Where it ends.
        reason: String,
    },
    /// The file is malformed (bad marker, checksum, Huffman code, ...).
    CorruptImage {
        /// The file.
        path: PathBuf,
        /// "PNG" or "JPEG".
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The header declares a width or height of zero.
    ZeroSizedImage {
        /// The file.
        path: PathBuf,
        /// Declared width.
        width: u64,
        /// Declared height.
        height: u64,
    },
    /// The header declares more pixels than the configured maximum.
    TooManyPixels {
        /// The file.
        path: PathBuf,
        /// Declared width.
        width: u64,
        /// Declared height.
        height: u64,
        /// The limit in force.
        max_pixels: u64,
    },
    /// The file asks for more decoding work than a fixed limit allows (e.g. a JPEG with more
    /// than 500 scans), refused before that work is done.
    LimitExceeded {
        /// The file.
        path: PathBuf,
        /// "PNG" or "JPEG".
        format: &'static str,
        /// What is counted (e.g. "scans").
        what: &'static str,
        /// The limit in force.
        max: u64,
    },
    /// The file is larger than any image within the pixel limit can be.
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The largest accepted.
        max: u64,
    },
    /// `preprocessor_config.json` exists but cannot be used.
    InvalidPreprocessorConfig {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A caller-supplied argument is out of range (e.g. a zero crop size).
    InvalidArgument {
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Reasons can come from the file itself: control characters are escaped so an error
        // stays one printable line.
        let raw = Raw(self).to_string();
        for c in raw.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// The message as the variant builds it, before escaping.
struct Raw<'a>(&'a Error);

impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Error::Io { path, source } => {
                write!(f, "{}: cannot read file: {source}", path.display())
            }
            Error::EmptyImage { path } => write!(f, "{}: empty file (0 bytes)", path.display()),
            Error::UnsupportedFormat { path, format } => {
                write!(f, "{}: unsupported image format: {format}", path.display())
            }
            Error::UnsupportedImage {
                path,
                format,
                reason,
            } => write!(
                f,
                "{}: unsupported {format} image: {reason}",
                path.display()
            ),
            Error::TruncatedImage {
                path,
                format,
                reason,
            } => write!(f, "{}: truncated {format} file: {reason}", path.display()),
            Error::CorruptImage {
                path,
                format,
                reason,
            } => write!(f, "{}: corrupt {format} file: {reason}", path.display()),
            Error::ZeroSizedImage {
                path,
                width,
                height,
            } => write!(
                f,
                "{}: image has zero size ({width}x{height})",
                path.display()
            ),
            Error::TooManyPixels {
                path,
                width,
                height,
                max_pixels,
            } => write!(
                f,
                "{}: image is {width}x{height} = {} pixels, more than the limit of {max_pixels}",
                path.display(),
                width.saturating_mul(*height)
            ),
            Error::LimitExceeded {
                path,
                format,
                what,
                max,
            } => write!(
                f,
                "{}: {format} file has more than {max} {what}, the decoder's limit",
                path.display()
            ),
            Error::FileTooLarge { path, size, max } => write!(
                f,
                "{}: {size} bytes, more than an image within the pixel limit can take ({max})",
                path.display()
            ),
            Error::InvalidPreprocessorConfig { path, reason } => {
                write!(
                    f,
                    "{}: invalid preprocessor config: {reason}",
                    path.display()
                )
            }
            Error::InvalidArgument { reason } => write!(f, "invalid argument: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
