//! The one error type of `clip-tensor`.

use crate::DType;
use std::fmt;

/// What went wrong in a tensor operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// Two shapes that must agree do not.
    ShapeMismatch {
        op: &'static str,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// A shape is not valid for the operation (wrong rank, zero where not allowed, ...).
    BadShape {
        op: &'static str,
        shape: Vec<usize>,
        reason: String,
    },
    /// A dimension index past the rank.
    DimOutOfRange {
        op: &'static str,
        dim: usize,
        rank: usize,
    },
    /// A range past the end of a dimension.
    RangeOutOfBounds {
        op: &'static str,
        dim: usize,
        start: usize,
        len: usize,
        size: usize,
    },
    /// The number of elements does not match the shape.
    ElementCount {
        op: &'static str,
        expected: usize,
        found: usize,
    },
    /// The operation needs a different element type.
    DType {
        op: &'static str,
        expected: DType,
        found: DType,
    },
    /// A view that needs a contiguous layout got a strided one.
    NotContiguous { op: &'static str },
    /// A byte buffer that is too short or whose length is not a multiple of the element size.
    Bytes { what: String },
    /// An execution context could not be built (kernel set not runnable, thread count).
    Exec { reason: String },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch {
                op,
                expected,
                found,
            } => {
                write!(f, "{op}: expected shape {expected:?}, found {found:?}")
            }
            Error::BadShape { op, shape, reason } => write!(f, "{op}: shape {shape:?}: {reason}"),
            Error::DimOutOfRange { op, dim, rank } => {
                write!(f, "{op}: dimension {dim} out of range for rank {rank}")
            }
            Error::RangeOutOfBounds {
                op,
                dim,
                start,
                len,
                size,
            } => write!(
                f,
                "{op}: range {start}..{} of dimension {dim} exceeds its size {size}",
                start + len
            ),
            Error::ElementCount {
                op,
                expected,
                found,
            } => {
                write!(f, "{op}: shape needs {expected} elements, found {found}")
            }
            Error::DType {
                op,
                expected,
                found,
            } => {
                write!(f, "{op}: expected dtype {expected}, found {found}")
            }
            Error::NotContiguous { op } => write!(f, "{op}: the tensor is not contiguous"),
            Error::Bytes { what } => write!(f, "{what}"),
            Error::Exec { reason } => write!(f, "threads: {reason}"),
        }
    }
}

impl std::error::Error for Error {}
