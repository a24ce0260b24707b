//! What the towers give back, as types that say what they hold: raw projections
//! ([`Features`], HF's `get_image_features` / `get_text_features`), L2-normalised
//! [`Embeddings`], and the [`Similarity`] of two sets of embeddings (one cosine matrix, from
//! which CLIP's logits and probabilities are read).
//!
//! Not here: computing them (`model.rs`).

use crate::{Error, Result};
use clip_kernels::{rows, Isa, SoftmaxMask};

/// Raw projections `[rows, dim]` (not normalised), row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    data: Vec<f32>,
    rows: usize,
    dim: usize,
}

/// L2-normalised embeddings `[rows, dim]`, row-major: each row has norm 1, or is all zeros
/// when its features were (normalising zero gives zero, not NaN).
#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    data: Vec<f32>,
    rows: usize,
    dim: usize,
}

/// Shared accessors of the two row-major matrices.
macro_rules! matrix_accessors {
    ($t:ident) => {
        impl $t {
            /// Number of rows (images or texts).
            pub fn rows(&self) -> usize {
                self.rows
            }

            /// Width of a row.
            pub fn dim(&self) -> usize {
                self.dim
            }

            /// Row `i`. Panics if `i >= rows()`.
            pub fn row(&self, i: usize) -> &[f32] {
                &self.data[i * self.dim..(i + 1) * self.dim]
            }

            /// Every row, in order.
            pub fn iter(&self) -> impl Iterator<Item = &[f32]> {
                self.data.chunks_exact(self.dim.max(1)).take(self.rows)
            }

            /// The `[rows, dim]` values, row-major.
            pub fn as_slice(&self) -> &[f32] {
                &self.data
            }

            /// The `[rows, dim]` values, row-major.
            pub fn into_vec(self) -> Vec<f32> {
                self.data
            }

            /// Appends the rows of `other` (same `dim`).
            pub fn extend(&mut self, other: $t) -> Result<()> {
                if self.rows > 0 && other.rows > 0 && other.dim != self.dim {
                    return Err(Error::InvalidInput {
                        reason: format!("cannot append rows of {} to {}", other.dim, self.dim),
                    });
                }
                if self.rows == 0 {
                    self.dim = other.dim;
                }
                self.data.extend_from_slice(&other.data);
                self.rows += other.rows;
                Ok(())
            }
        }
    };
}

matrix_accessors!(Features);
matrix_accessors!(Embeddings);

fn check_len(len: usize, rows: usize, dim: usize) -> Result<()> {
    if rows.checked_mul(dim) != Some(len) {
        return Err(Error::InvalidInput {
            reason: format!("{len} values are not {rows} rows of {dim}"),
        });
    }
    Ok(())
}

impl Features {
    /// Wraps `[rows, dim]` row-major values.
    pub fn new(data: Vec<f32>, rows: usize, dim: usize) -> Result<Features> {
        check_len(data.len(), rows, dim)?;
        Ok(Features { data, rows, dim })
    }

    /// No rows yet, of width `dim` (to [`extend`](Features::extend)).
    pub fn empty(dim: usize) -> Features {
        Features {
            data: Vec::new(),
            rows: 0,
            dim,
        }
    }

    /// Each row divided by its L2 norm, as `x / x.norm(dim=-1, keepdim=True)` computes it; a
    /// zero row stays zero.
    pub fn normalize(mut self) -> Embeddings {
        if self.dim > 0 {
            for row in self.data.chunks_exact_mut(self.dim) {
                let norm = row.iter().map(|&v| v * v).sum::<f32>().sqrt();
                if norm > 0.0 {
                    row.iter_mut().for_each(|v| *v /= norm);
                }
            }
        }
        Embeddings {
            data: self.data,
            rows: self.rows,
            dim: self.dim,
        }
    }
}

impl Embeddings {
    /// Normalises `[rows, dim]` row-major values (see [`Features::normalize`]).
    pub fn from_unnormalized(data: Vec<f32>, rows: usize, dim: usize) -> Result<Embeddings> {
        Ok(Features::new(data, rows, dim)?.normalize())
    }

    /// No rows yet, of width `dim` (to [`extend`](Embeddings::extend)).
    pub fn empty(dim: usize) -> Embeddings {
        Embeddings {
            data: Vec::new(),
            rows: 0,
            dim,
        }
    }

    /// The cosine similarity of every row of `self` with every row of `other`, `[rows,
    /// other.rows]` (a dot product each: the rows are normalised).
    pub fn cosine(&self, other: &Embeddings) -> Result<Vec<f32>> {
        if self.dim != other.dim && self.rows > 0 && other.rows > 0 {
            return Err(Error::InvalidInput {
                reason: format!(
                    "embeddings of {} and {} dimensions cannot be compared",
                    self.dim, other.dim
                ),
            });
        }
        let mut out = Vec::with_capacity(self.rows * other.rows);
        for a in self.iter() {
            for b in other.iter() {
                out.push(a.iter().zip(b).map(|(x, y)| x * y).sum());
            }
        }
        Ok(out)
    }
}

/// The similarity of `rows` embeddings (e.g. images) with `cols` others (e.g. texts): one
/// cosine matrix and the model's logit scale.
#[derive(Clone, Debug, PartialEq)]
pub struct Similarity {
    cosine: Vec<f32>,
    rows: usize,
    cols: usize,
    scale: f32,
}

impl Similarity {
    /// `cosine` is `[rows, cols]`; `scale` multiplies it into logits (`exp(logit_scale)`).
    pub(crate) fn new(cosine: Vec<f32>, rows: usize, cols: usize, scale: f32) -> Similarity {
        Similarity {
            cosine,
            rows,
            cols,
            scale,
        }
    }

    /// Rows (the first set of embeddings).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (the second set).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The cosine similarities, `[rows, cols]`.
    pub fn cosine(&self) -> &[f32] {
        &self.cosine
    }

    /// The factor from cosine to logits: `exp(logit_scale)` (100 for OpenAI's models).
    pub fn logit_scale(&self) -> f32 {
        self.scale
    }

    /// CLIP's logits, `scale x cosine`, `[rows, cols]`: `logits_per_image` when the rows are
    /// images and the columns texts.
    pub fn logits(&self) -> Vec<f32> {
        self.cosine.iter().map(|&c| self.scale * c).collect()
    }

    /// The logits transposed, `[cols, rows]`: `logits_per_text`.
    pub fn logits_transposed(&self) -> Vec<f32> {
        let mut out = vec![0.0f32; self.cosine.len()];
        for i in 0..self.rows {
            for j in 0..self.cols {
                out[j * self.rows + i] = self.scale * self.cosine[i * self.cols + j];
            }
        }
        out
    }

    /// The softmax of each row's logits over the columns, `[rows, cols]`: per image, the
    /// probability of each text.
    pub fn probs(&self) -> Vec<f32> {
        let mut p = self.logits();
        if self.cols > 0 {
            rows::softmax_rows(Isa::Scalar, &mut p, self.cols, SoftmaxMask::None);
        }
        p
    }
}
