//! `Exec`: where and how work runs. A rayon pool of a fixed number of threads and the kernel
//! set its kernels use (and, for bf16 weights, which kind of bf16 kernel), chosen once per
//! model and passed explicitly to every operation.
//!
//! Every operation run on it gives bitwise the same result for every thread count: GEMM never
//! splits the k loop, row kernels are split on row boundaries ([`Exec::for_rows`]), and
//! elementwise kernels give the same bits for an element wherever it falls in a chunk.
//!
//! Not here: the kernels themselves (`clip-kernels`), tensors.

use crate::{Error, Result};
use clip_kernels::{Bf16Kernel, Isa};
use rayon::prelude::*;
use std::sync::Arc;

/// Threads per core above which a pool is refused: more only adds switching, and a typo
/// (`--threads 100000`) would otherwise start that many OS threads.
pub const MAX_THREADS_PER_CORE: usize = 4;

/// Elements per parallel chunk of a row operation (rounded to whole rows): small enough to
/// spread a short activation over the threads, large enough to amortise a task.
const CHUNK_ELEMS: usize = 8192;

/// An execution context: a thread pool and the kernel set to run on it.
#[derive(Clone)]
pub struct Exec {
    pool: Arc<rayon::ThreadPool>,
    isa: Isa,
    /// The bf16 kernel asked for; `None`: the kernel set's default.
    bf16: Option<Bf16Kernel>,
}

impl std::fmt::Debug for Exec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Exec({} threads, {})", self.threads(), self.isa)
    }
}

/// The cores this process may use (1 if unknown).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The largest thread count [`Exec::new`] accepts on this machine.
pub fn max_threads() -> usize {
    available_cores() * MAX_THREADS_PER_CORE
}

impl Exec {
    /// `threads` threads (`0` means one per core) running the kernel set `isa`. Refuses a
    /// kernel set this CPU cannot run and more than [`max_threads`] threads.
    pub fn new(threads: usize, isa: Isa) -> Result<Exec> {
        if !isa.is_available() {
            return Err(Error::Exec {
                reason: format!("this CPU cannot run the {isa} kernels"),
            });
        }
        if threads > max_threads() {
            return Err(Error::Exec {
                reason: format!(
                    "{threads} threads is more than {MAX_THREADS_PER_CORE} per core ({} cores: \
                     at most {})",
                    available_cores(),
                    max_threads()
                ),
            });
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::Exec {
                reason: e.to_string(),
            })?;
        Ok(Exec {
            pool: Arc::new(pool),
            isa,
            bf16: None,
        })
    }

    /// The same context with bf16 weights multiplied by `kernel` instead of the kernel set's
    /// default ([`Bf16Kernel::default_for`]). Refuses a kind the kernel set lacks on this CPU.
    pub fn with_bf16_kernel(mut self, kernel: Bf16Kernel) -> Result<Exec> {
        if !kernel.is_available(self.isa) {
            return Err(Error::Exec {
                reason: format!("no {kernel} bf16 kernel for {} on this CPU", self.isa),
            });
        }
        self.bf16 = Some(kernel);
        Ok(self)
    }

    /// The kind of kernel bf16 weights packed on this context are multiplied by: the one
    /// asked for ([`Exec::with_bf16_kernel`]), else [`Bf16Kernel::default_for`] the kernel
    /// set (`CLIP_BF16`, or measured on this CPU).
    pub fn bf16_kernel(&self) -> Bf16Kernel {
        self.bf16
            .unwrap_or_else(|| Bf16Kernel::default_for(self.isa))
    }

    /// `threads` threads with the process's kernel set ([`Isa::active`]).
    pub fn with_threads(threads: usize) -> Result<Exec> {
        Self::new(threads, Isa::active())
    }

    /// The number of threads of the pool.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// The kernel set.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Runs `f` inside the pool (its parallel regions use the pool's threads).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    /// Runs `f(isa, x_rows, out_rows)` over chunks of whole `cols`-wide rows of `x` and
    /// `out` in parallel. The one place rows are chunked: a row's result never depends on
    /// the chunk it falls in.
    pub fn for_rows(
        &self,
        x: &[f32],
        out: &mut [f32],
        cols: usize,
        f: impl Fn(Isa, &[f32], &mut [f32]) + Sync,
    ) {
        assert_eq!(x.len(), out.len(), "for_rows: x and out differ in length");
        if cols == 0 || x.is_empty() {
            return;
        }
        let chunk = cols * (CHUNK_ELEMS / cols).max(1);
        let isa = self.isa;
        self.install(|| {
            out.par_chunks_mut(chunk)
                .zip(x.par_chunks(chunk))
                .for_each(|(o, x)| f(isa, x, o))
        });
    }
}
