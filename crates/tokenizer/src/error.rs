//! The crate's one error type and its `Result` alias.
//!
//! Hand-written `Display`/`Error` impls; no derive-macro crate.

use std::fmt;

/// Everything that can go wrong when loading a vocabulary or tokenizing.
#[derive(Debug)]
pub enum Error {
    /// A text gives more tokens than fit in the context (SOT and EOT included)
    /// and truncation was not asked for.
    TooLong {
        /// Index of the offending text in the batch.
        index: usize,
        /// Tokens it needs, SOT and EOT included.
        tokens: usize,
        /// The context length asked for.
        context_length: usize,
    },
    /// A context length below 2 cannot hold SOT and EOT.
    ContextTooShort {
        /// The context length asked for.
        context_length: usize,
    },
    /// Input bytes are not valid UTF-8 and replacement was not asked for.
    InvalidUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// An id given to `decode` is not in the vocabulary.
    UnknownId {
        /// The id.
        id: u32,
    },
    /// A vocabulary or merges file is malformed.
    Vocab {
        /// Which file or source.
        source: String,
        /// 1-based line number, when it applies.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// Reading a file failed.
    Io {
        /// The path.
        path: String,
        /// The cause.
        error: std::io::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooLong {
                index,
                tokens,
                context_length,
            } => write!(
                f,
                "input {index} is too long for context length {context_length}: it needs \
                 {tokens} tokens with SOT and EOT (truncation cuts it: `--truncate` in the \
                 clip program, `Truncation::Cut` in the library)"
            ),
            Error::ContextTooShort { context_length } => write!(
                f,
                "context length {context_length} is too short: SOT and EOT need 2"
            ),
            Error::InvalidUtf8 { offset } => {
                write!(f, "invalid UTF-8 at byte offset {offset}")
            }
            Error::UnknownId { id } => write!(f, "token id {id} is not in the vocabulary"),
            Error::Vocab {
                source,
                line: Some(line),
                message,
            } => write!(f, "{source}:{line}: {message}"),
            Error::Vocab {
                source,
                line: None,
                message,
            } => write!(f, "{source}: {message}"),
            Error::Io { path, error } => write!(f, "{path}: {error}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}
