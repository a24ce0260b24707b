//! The one error type of the `clip` crate and its `Result` alias.
//!
//! Every variant carries structured fields; image variants name the file (or the
//! label given for in-memory bytes) and the reason. Display and `std::error::Error`
//! are written by hand.

use std::fmt;
use std::path::PathBuf;

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in the `clip` crate.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read from disk.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A model folder lacks a file the loader needs.
    MissingFile { path: PathBuf, what: &'static str },
    /// The weights file is not valid safetensors (bad or truncated header, offsets out of
    /// range, overlapping, or not matching shape x dtype).
    InvalidWeights { path: PathBuf, reason: String },
    /// The weights use neither Hugging Face nor OpenAI key names.
    UnknownLayout { path: PathBuf },
    /// A tensor the model needs is not in the file.
    MissingTensor { key: String },
    /// A tensor has another shape than the configuration implies.
    WrongShape {
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// A tensor has an element type the model cannot use.
    WrongDType {
        key: String,
        expected: &'static str,
        found: String,
    },
    /// Validation was asked for and tensors hold NaN or Inf (see `WeightFile::non_finite`).
    NonFiniteWeights {
        path: PathBuf,
        tensors: Vec<crate::weights::NonFinite>,
    },
    /// `config.json` is unreadable, or inconsistent with itself or with the tensors.
    InvalidConfig { path: PathBuf, reason: String },
    /// Model inputs of the wrong shape or content (pixel tensor, token ids).
    InvalidInput { reason: String },
    /// The tokenizer refused a text.
    Tokenizer(clip_tokenizer::Error),
    /// A tensor operation failed.
    Tensor(clip_tensor::Error),
    /// An image could not be decoded or preprocessed.
    #[cfg(feature = "image")]
    Image(clip_image::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names and reasons can come from the file itself (tensor keys in a safetensors
        // header, JSON): control characters are escaped so an error stays one printable line.
        let raw = Raw(self).to_string();
        if !raw.chars().any(char::is_control) {
            return f.write_str(&raw);
        }
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
            Error::MissingFile { path, what } => {
                write!(f, "{}: missing {what}", path.display())
            }
            Error::InvalidWeights { path, reason } => {
                write!(f, "{}: invalid safetensors file: {reason}", path.display())
            }
            Error::UnknownLayout { path } => write!(
                f,
                "{}: tensor names are neither Hugging Face CLIP (vision_model.*, text_model.*) \
                 nor OpenAI CLIP (visual.*, transformer.*)",
                path.display()
            ),
            Error::MissingTensor { key } => write!(f, "missing tensor {key}"),
            Error::WrongShape {
                key,
                expected,
                found,
            } => {
                write!(
                    f,
                    "tensor {key}: expected shape {expected:?}, found {found:?}"
                )
            }
            Error::WrongDType {
                key,
                expected,
                found,
            } => {
                write!(f, "tensor {key}: expected dtype {expected}, found {found}")
            }
            Error::NonFiniteWeights { path, tensors } => {
                write!(
                    f,
                    "{}: {} tensor(s) hold NaN or Inf:",
                    path.display(),
                    tensors.len()
                )?;
                for (i, t) in tensors.iter().enumerate() {
                    if i == 3 {
                        return write!(f, " and {} more", tensors.len() - 3);
                    }
                    let sep = if i == 0 { "" } else { "," };
                    write!(f, "{sep} {} ({} NaN, {} Inf)", t.key, t.nan, t.inf)?;
                }
                Ok(())
            }
            Error::InvalidConfig { path, reason } => {
                write!(f, "{}: invalid model config: {reason}", path.display())
            }
            Error::InvalidInput { reason } => write!(f, "invalid input: {reason}"),
            Error::Tokenizer(e) => write!(f, "tokenizer: {e}"),
            Error::Tensor(e) => write!(f, "{e}"),
            #[cfg(feature = "image")]
            Error::Image(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Tokenizer(e) => Some(e),
            Error::Tensor(e) => Some(e),
            #[cfg(feature = "image")]
            Error::Image(e) => Some(e),
            _ => None,
        }
    }
}

impl From<clip_tensor::Error> for Error {
    fn from(e: clip_tensor::Error) -> Self {
        Error::Tensor(e)
    }
}

#[cfg(feature = "image")]
impl From<clip_image::Error> for Error {
    fn from(e: clip_image::Error) -> Self {
        Error::Image(e)
    }
}

impl From<clip_tokenizer::Error> for Error {
    fn from(e: clip_tokenizer::Error) -> Self {
        Error::Tokenizer(e)
    }
}
