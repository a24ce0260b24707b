//! The memory budget of decoding, shared by every thread of the process: each decode
//! reserves what its header says it will allocate (input bytes included) before it
//! allocates, and waits while the reservations in flight would exceed the budget. So
//! parallel decoding (`Preprocessor::preprocess_batch`, `clip index`, any rayon loop over
//! files) holds at most the budget, or one decode alone when that one is larger: a
//! 685-byte progressive CMYK 10000 x 10000 JPEG takes 1.57 GB, and four threads decoding
//! four of them took 7.2 GB before this.
//!
//! A reservation is held across decoding and preprocessing, and a thread holding one does
//! no other rayon work (decoding and preprocessing are sequential), so a waiting task can
//! always count on the holders to finish: no deadlock.
//!
//! Not here: what a decode needs (`probe.rs` estimates it from the header).

use std::sync::{Condvar, Mutex};

/// The default budget: 1 GiB, room for about eight 12-megapixel photos at once.
pub const DEFAULT_DECODE_MEMORY_BUDGET: u64 = 1 << 30;

struct State {
    capacity: u64,
    in_use: u64,
}

/// A budget of bytes; the process has one (`GLOBAL`), tests make their own.
pub(crate) struct Budget {
    state: Mutex<State>,
    freed: Condvar,
}

static GLOBAL: Budget = Budget::new(DEFAULT_DECODE_MEMORY_BUDGET);

/// Sets the bytes that decodes in flight may reserve together (at least one decode always
/// runs, whatever its size). Affects decodes that start afterwards.
pub fn set_decode_memory_budget(bytes: u64) {
    let mut s = GLOBAL.lock();
    s.capacity = bytes.max(1);
    drop(s);
    GLOBAL.freed.notify_all();
}

/// The budget in force; see [`set_decode_memory_budget`].
pub fn decode_memory_budget() -> u64 {
    GLOBAL.lock().capacity
}

/// Reserves `bytes` of the process's budget, waiting for room.
pub(crate) fn reserve(bytes: u64) -> Reservation<'static> {
    GLOBAL.reserve(bytes)
}

impl Budget {
    pub(crate) const fn new(capacity: u64) -> Self {
        Budget {
            state: Mutex::new(State {
                capacity,
                in_use: 0,
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the counts inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `bytes` fit beside the reservations in flight, then takes them. A
    /// request larger than the whole budget waits until nothing else is reserved and takes
    /// the whole budget, so it runs alone.
    pub(crate) fn reserve(&self, bytes: u64) -> Reservation<'_> {
        let mut s = self.lock();
        loop {
            let want = bytes.min(s.capacity);
            if s.in_use + want <= s.capacity {
                s.in_use += want;
                return Reservation {
                    budget: self,
                    bytes: want,
                };
            }
            s = self.freed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Bytes reserved until dropped.
pub(crate) struct Reservation<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut s = self.budget.lock();
        s.in_use -= self.bytes.min(s.in_use);
        drop(s);
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// Eight threads reserving 30, 60 or 250 of a budget of 100: the bytes held at once
    /// never exceed 100, the request over the budget runs alone, and all finish.
    #[test]
    fn reservations_never_exceed_the_budget() {
        let budget = Budget::new(100);
        let held = AtomicU64::new(0);
        let peak = AtomicU64::new(0);
        let alone = AtomicU64::new(0);
        std::thread::scope(|s| {
            for i in 0..8u64 {
                let (budget, held, peak, alone) = (&budget, &held, &peak, &alone);
                s.spawn(move || {
                    let want = [30, 60, 250][(i % 3) as usize];
                    for _ in 0..5 {
                        let r = budget.reserve(want);
                        let now = held.fetch_add(r.bytes, Ordering::SeqCst) + r.bytes;
                        peak.fetch_max(now, Ordering::SeqCst);
                        if want > 100 && now == 100 {
                            alone.fetch_add(1, Ordering::SeqCst);
                        }
                        std::thread::sleep(Duration::from_millis(1));
                        held.fetch_sub(r.bytes, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(peak.load(Ordering::SeqCst), 100);
        // Threads 2 and 5 ask for 250, five times each.
        assert_eq!(alone.load(Ordering::SeqCst), 10);
        assert_eq!(budget.lock().in_use, 0);
    }
}
