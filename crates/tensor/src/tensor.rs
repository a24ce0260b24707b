//! `Tensor`: a shape and strides over shared storage that is owned (f32, f16, bf16, i8) or
//! borrowed from bytes kept alive elsewhere (a memory-mapped file). An i8 tensor holds a
//! quantised weight's integers: read as f32, it gives them unscaled.
//!
//! Views (`narrow`, `transpose`, `reshape` of a contiguous tensor) share the storage and copy
//! nothing; `contiguous` and `to_f32` copy only when they must. Not here: autograd,
//! broadcasting arithmetic, devices.

use crate::{DType, Error, Result};
use half::{bf16, f16};
use std::sync::Arc;

/// Bytes kept alive by their owner (for instance a memory map), viewed by tensors.
pub trait ByteStorage: Send + Sync + 'static {
    fn bytes(&self) -> &[u8];
}

impl ByteStorage for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// Where a tensor's elements live.
#[derive(Clone)]
enum Storage {
    F32(Arc<Vec<f32>>),
    F16(Arc<Vec<f16>>),
    BF16(Arc<Vec<bf16>>),
    I8(Arc<Vec<i8>>),
    /// `len` elements of `dtype` at byte `start` of `bytes`, little-endian and aligned.
    Bytes {
        bytes: Arc<dyn ByteStorage>,
        start: usize,
        len: usize,
        dtype: DType,
    },
}

/// An n-dimensional array view: element `idx` is at `offset + sum(idx[d] * strides[d])` of the
/// storage.
#[derive(Clone)]
pub struct Tensor {
    storage: Storage,
    shape: Vec<usize>,
    strides: Vec<usize>,
    pub(crate) offset: usize,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tensor")
            .field("dtype", &self.dtype())
            .field("shape", &self.shape)
            .field("strides", &self.strides)
            .finish()
    }
}

fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    strides
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    /// A contiguous f32 tensor owning `data`.
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        Self::check_count("from_vec", shape, data.len())?;
        Ok(Self::owned(Storage::F32(Arc::new(data)), shape))
    }

    /// A contiguous f16 tensor owning `data`.
    pub fn from_f16(data: Vec<f16>, shape: &[usize]) -> Result<Tensor> {
        Self::check_count("from_f16", shape, data.len())?;
        Ok(Self::owned(Storage::F16(Arc::new(data)), shape))
    }

    /// A contiguous bf16 tensor owning `data`.
    pub fn from_bf16(data: Vec<bf16>, shape: &[usize]) -> Result<Tensor> {
        Self::check_count("from_bf16", shape, data.len())?;
        Ok(Self::owned(Storage::BF16(Arc::new(data)), shape))
    }

    /// A contiguous i8 tensor owning `data` (a quantised weight's integers).
    pub fn from_i8(data: Vec<i8>, shape: &[usize]) -> Result<Tensor> {
        Self::check_count("from_i8", shape, data.len())?;
        Ok(Self::owned(Storage::I8(Arc::new(data)), shape))
    }

    /// A zero-filled f32 tensor.
    pub fn zeros(shape: &[usize]) -> Tensor {
        Self::owned(Storage::F32(Arc::new(vec![0.0; numel(shape)])), shape)
    }

    /// A tensor over `bytes[start..]` (little-endian `dtype` elements), copying nothing when the
    /// bytes are aligned for the type on a little-endian machine, and copying into owned storage
    /// otherwise.
    pub fn from_bytes(
        bytes: Arc<dyn ByteStorage>,
        start: usize,
        dtype: DType,
        shape: &[usize],
    ) -> Result<Tensor> {
        let n = numel(shape);
        let nbytes = n.checked_mul(dtype.size()).ok_or_else(|| Error::Bytes {
            what: format!("shape {shape:?} overflows the address space"),
        })?;
        let all = bytes.bytes();
        let end = start
            .checked_add(nbytes)
            .filter(|&e| e <= all.len())
            .ok_or_else(|| Error::Bytes {
                what: format!(
                    "{nbytes} bytes at offset {start} exceed a buffer of {} bytes",
                    all.len()
                ),
            })?;
        let raw = &all[start..end];
        let aligned =
            cfg!(target_endian = "little") && (raw.as_ptr() as usize).is_multiple_of(dtype.size());
        if aligned {
            return Ok(Self::owned(
                Storage::Bytes {
                    bytes,
                    start,
                    len: n,
                    dtype,
                },
                shape,
            ));
        }
        let storage = match dtype {
            DType::F32 => Storage::F32(Arc::new(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )),
            DType::F16 => Storage::F16(Arc::new(
                raw.chunks_exact(2)
                    .map(|c| f16::from_bits(u16::from_le_bytes([c[0], c[1]])))
                    .collect(),
            )),
            DType::BF16 => Storage::BF16(Arc::new(
                raw.chunks_exact(2)
                    .map(|c| bf16::from_bits(u16::from_le_bytes([c[0], c[1]])))
                    .collect(),
            )),
            DType::I8 => Storage::I8(Arc::new(raw.iter().map(|&b| b as i8).collect())),
        };
        Ok(Self::owned(storage, shape))
    }

    fn owned(storage: Storage, shape: &[usize]) -> Tensor {
        Tensor {
            storage,
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    fn check_count(op: &'static str, shape: &[usize], found: usize) -> Result<()> {
        let expected = numel(shape);
        if expected != found {
            return Err(Error::ElementCount {
                op,
                expected,
                found,
            });
        }
        Ok(())
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    pub fn dtype(&self) -> DType {
        match &self.storage {
            Storage::F32(_) => DType::F32,
            Storage::F16(_) => DType::F16,
            Storage::BF16(_) => DType::BF16,
            Storage::I8(_) => DType::I8,
            Storage::Bytes { dtype, .. } => *dtype,
        }
    }

    /// Whether the storage is borrowed bytes (a memory map) rather than owned.
    pub fn is_borrowed(&self) -> bool {
        matches!(self.storage, Storage::Bytes { .. })
    }

    /// Whether the elements are laid out row-major without gaps.
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for d in (0..self.rank()).rev() {
            if self.shape[d] != 1 && self.strides[d] != expected {
                return false;
            }
            expected *= self.shape[d];
        }
        true
    }

    pub(crate) fn storage_f32(&self) -> Option<&[f32]> {
        match &self.storage {
            Storage::F32(v) => Some(v),
            Storage::Bytes {
                bytes,
                start,
                len,
                dtype: DType::F32,
            } => bytemuck::try_cast_slice(&bytes.bytes()[*start..*start + len * 4]).ok(),
            _ => None,
        }
    }

    fn storage_f16(&self) -> Option<&[f16]> {
        match &self.storage {
            Storage::F16(v) => Some(v),
            Storage::Bytes {
                bytes,
                start,
                len,
                dtype: DType::F16,
            } => bytemuck::try_cast_slice(&bytes.bytes()[*start..*start + len * 2]).ok(),
            _ => None,
        }
    }

    fn storage_bf16(&self) -> Option<&[bf16]> {
        match &self.storage {
            Storage::BF16(v) => Some(v),
            Storage::Bytes {
                bytes,
                start,
                len,
                dtype: DType::BF16,
            } => bytemuck::try_cast_slice(&bytes.bytes()[*start..*start + len * 2]).ok(),
            _ => None,
        }
    }

    fn storage_i8_all(&self) -> Option<&[i8]> {
        match &self.storage {
            Storage::I8(v) => Some(v),
            Storage::Bytes {
                bytes,
                start,
                len,
                dtype: DType::I8,
            } => Some(bytemuck::cast_slice(&bytes.bytes()[*start..*start + len])),
            _ => None,
        }
    }

    /// The i8 storage from this view's offset to the end (a quantised weight's integers,
    /// memory-mapped ones in place); `None` for other dtypes.
    pub(crate) fn storage_i8(&self) -> Option<&[i8]> {
        self.storage_i8_all().map(|s| &s[self.offset..])
    }

    /// The 16-bit storage (f16 or bf16 bits) from this view's offset to the end, and the
    /// dtype; `None` for f32 storage. No copy: a memory-mapped tensor stays mapped.
    pub(crate) fn storage_bits16(&self) -> Option<(&[u16], DType)> {
        let (bits, dtype): (&[u16], DType) = if let Some(s) = self.storage_bf16() {
            (bytemuck::cast_slice(s), DType::BF16)
        } else if let Some(s) = self.storage_f16() {
            (bytemuck::cast_slice(s), DType::F16)
        } else {
            return None;
        };
        Some((&bits[self.offset..], dtype))
    }

    /// The elements of a contiguous f32 tensor, in place (no copy).
    pub fn as_f32_slice(&self) -> Result<&[f32]> {
        if !self.is_contiguous() {
            return Err(Error::NotContiguous { op: "as_f32_slice" });
        }
        let all = self.storage_f32().ok_or(Error::DType {
            op: "as_f32_slice",
            expected: DType::F32,
            found: self.dtype(),
        })?;
        Ok(&all[self.offset..self.offset + self.numel()])
    }

    /// The elements of a contiguous f32 tensor for writing; copies the storage first if it is
    /// shared or borrowed.
    pub fn as_f32_slice_mut(&mut self) -> Result<&mut [f32]> {
        if !self.is_contiguous() || self.dtype() != DType::F32 {
            *self = self.to_f32()?;
        }
        if !matches!(self.storage, Storage::F32(_)) {
            let v = self.as_f32_slice()?.to_vec();
            *self = Tensor::from_vec(v, &self.shape)?;
        }
        let n = self.numel();
        let off = self.offset;
        match &mut self.storage {
            Storage::F32(v) => Ok(&mut Arc::make_mut(v)[off..off + n]),
            _ => unreachable!("converted to owned f32 above"),
        }
    }

    /// A contiguous f32 copy of the elements, in row-major order.
    pub fn to_vec_f32(&self) -> Vec<f32> {
        let n = self.numel();
        let mut out = vec![0.0f32; n];
        if self.is_contiguous() {
            let r = self.offset..self.offset + n;
            if let Some(s) = self.storage_f32() {
                out.copy_from_slice(&s[r]);
            } else if let Some(s) = self.storage_f16() {
                crate::dtype::f16_to_f32(&s[r], &mut out);
            } else if let Some(s) = self.storage_bf16() {
                crate::dtype::bf16_to_f32(&s[r], &mut out);
            } else if let Some(s) = self.storage_i8_all() {
                out.iter_mut().zip(&s[r]).for_each(|(o, &v)| *o = v as f32);
            }
            return out;
        }
        let get: Box<dyn Fn(usize) -> f32 + '_> = if let Some(s) = self.storage_f32() {
            Box::new(move |i| s[i])
        } else if let Some(s) = self.storage_f16() {
            Box::new(move |i| s[i].to_f32())
        } else if let Some(s) = self.storage_bf16() {
            Box::new(move |i| s[i].to_f32())
        } else if let Some(s) = self.storage_i8_all() {
            Box::new(move |i| s[i] as f32)
        } else {
            Box::new(|_| f32::NAN)
        };
        let mut idx = vec![0usize; self.rank()];
        for o in out.iter_mut() {
            let pos: usize = self.offset
                + idx
                    .iter()
                    .zip(&self.strides)
                    .map(|(i, s)| i * s)
                    .sum::<usize>();
            *o = get(pos);
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < self.shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        out
    }

    /// The tensor as contiguous f32: itself when it already is, else a converted copy.
    pub fn to_f32(&self) -> Result<Tensor> {
        if self.dtype() == DType::F32 && self.is_contiguous() {
            return Ok(self.clone());
        }
        Tensor::from_vec(self.to_vec_f32(), &self.shape)
    }

    /// A contiguous copy (or the tensor itself when already contiguous), keeping the dtype
    /// for f32 and converting f16/bf16 to f32.
    pub fn contiguous(&self) -> Result<Tensor> {
        self.to_f32()
    }

    /// Elements `start..start+len` of dimension `dim`, as a view.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        let rank = self.rank();
        if dim >= rank {
            return Err(Error::DimOutOfRange {
                op: "narrow",
                dim,
                rank,
            });
        }
        let size = self.shape[dim];
        if start.checked_add(len).is_none_or(|e| e > size) {
            return Err(Error::RangeOutOfBounds {
                op: "narrow",
                dim,
                start,
                len,
                size,
            });
        }
        let mut t = self.clone();
        t.offset += start * self.strides[dim];
        t.shape[dim] = len;
        Ok(t)
    }

    /// Swaps two dimensions, as a view.
    pub fn transpose(&self, d0: usize, d1: usize) -> Result<Tensor> {
        let rank = self.rank();
        for d in [d0, d1] {
            if d >= rank {
                return Err(Error::DimOutOfRange {
                    op: "transpose",
                    dim: d,
                    rank,
                });
            }
        }
        let mut t = self.clone();
        t.shape.swap(d0, d1);
        t.strides.swap(d0, d1);
        Ok(t)
    }

    /// The same elements with another shape: a view when contiguous, else a copy.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        Self::check_count("reshape", shape, self.numel())?;
        let base = if self.is_contiguous() {
            self.clone()
        } else {
            self.contiguous()?
        };
        Ok(Tensor {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            ..base
        })
    }

    /// The f32 storage slice starting at this view's offset and the view's strides (2-D).
    pub(crate) fn strided_f32(&self) -> Result<(&[f32], [usize; 2])> {
        let all = self.storage_f32().ok_or(Error::DType {
            op: "strided view",
            expected: DType::F32,
            found: self.dtype(),
        })?;
        let s = self.strides();
        Ok((&all[self.offset..], [s[0], s[1]]))
    }
}
