//! The one error type of the `clip` crate and its `Result` alias.
//!
//! Every variant carries structured fields; messages are one printable line (names and
//! reasons that come from a file are escaped). Display and `std::error::Error` are written
//! by hand. Image errors are the image crate's, wrapped.

use std::fmt;
use std::path::PathBuf;

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// A tensor holding NaN or Inf values (see [`crate::LoadOptions::validate`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonFinite {
    /// The tensor's key in the file.
    pub key: String,
    /// How many elements are NaN.
    pub nan: usize,
    /// How many elements are +Inf or -Inf.
    pub inf: usize,
}

/// Everything that can go wrong in the `clip` crate.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read from disk.
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A file could not be written (`quantize_model`).
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A model folder lacks a file the loader needs.
    MissingFile {
        /// The path looked for.
        path: PathBuf,
        /// What it should have been.
        what: &'static str,
    },
    /// The weights file is not valid safetensors (bad or truncated header, offsets out of
    /// range, overlapping, or not matching shape x dtype), or is beyond the loader's limits.
    InvalidWeights {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The weights use no known checkpoint format's key names.
    UnknownLayout {
        /// The file.
        path: PathBuf,
    },
    /// A tensor the model needs is not in the file.
    MissingTensor {
        /// Its key, as the file would spell it.
        key: String,
    },
    /// A tensor has another shape than the configuration implies.
    WrongShape {
        /// Its key in the file.
        key: String,
        /// The shape the configuration implies.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor has an element type the model cannot use.
    WrongDType {
        /// Its key in the file.
        key: String,
        /// The types accepted.
        expected: &'static str,
        /// The type in the file.
        found: String,
    },
    /// Validation was asked for and tensors hold NaN or Inf.
    NonFiniteWeights {
        /// The file.
        path: PathBuf,
        /// The tensors, by key.
        tensors: Vec<NonFinite>,
    },
    /// A configuration (a config file, or one inferred from the shapes) is unreadable or
    /// inconsistent with itself or with the tensors.
    InvalidConfig {
        /// The config file (or the weights, for an inferred one).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Model inputs of the wrong shape or content (pixel values, token ids, embeddings).
    InvalidInput {
        /// What is wrong.
        reason: String,
    },
    /// A forward pass produced NaN or Inf (typically from NaN or Inf weights, which
    /// [`crate::LoadOptions::validate`] finds at load).
    NonFiniteOutput {
        /// "image" or "text".
        tower: &'static str,
        /// Which input of the batch.
        input: usize,
        /// Where the values first stop being finite.
        stage: String,
    },
    /// An argument out of range (e.g. a batch size of 0, a template without `{}`).
    InvalidArgument {
        /// What is wrong.
        reason: String,
    },
    /// The tokenizer refused a text (e.g. longer than the context without truncation).
    Tokenizer(clip_tokenizer::Error),
    /// A tensor operation or the execution context failed (e.g. too many threads).
    Tensor(clip_tensor::Error),
    /// An image could not be read, decoded or preprocessed.
    Image(clip_image::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names and reasons can come from the file itself (tensor keys in a safetensors
        // header, JSON): control characters are escaped so an error stays one printable line.
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
            Error::Write { path, reason } => {
                write!(f, "{}: cannot write file: {reason}", path.display())
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
            } => write!(
                f,
                "tensor {key}: expected shape {expected:?}, found {found:?}"
            ),
            Error::WrongDType {
                key,
                expected,
                found,
            } => write!(f, "tensor {key}: expected dtype {expected}, found {found}"),
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
            Error::InvalidArgument { reason } => write!(f, "invalid argument: {reason}"),
            Error::NonFiniteOutput {
                tower,
                input,
                stage,
            } => write!(
                f,
                "{tower} {input}: the {tower} tower produced NaN or Inf, first in {stage}; \
                 the weights may hold NaN or Inf (load with validation to check: \
                 LoadOptions::validate, or --validate)"
            ),
            Error::Tokenizer(e) => write!(f, "tokenizer: {e}"),
            Error::Tensor(e) => write!(f, "{e}"),
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

impl From<clip_tokenizer::Error> for Error {
    fn from(e: clip_tokenizer::Error) -> Self {
        Error::Tokenizer(e)
    }
}

impl From<clip_image::Error> for Error {
    fn from(e: clip_image::Error) -> Self {
        Error::Image(e)
    }
}
