//! How much of the cores each tower's worker had: the two workers run their forward passes
//! on the same thread pool, so while both are busy each gets about half of it. A batch's
//! cost is counted in that shared time (its wall time divided by the number of workers busy
//! over each stretch of it), which is what the batch would take alone: the admission
//! estimate in `batcher.rs` adds the towers' queued work on that scale.

use std::sync::Mutex;
use std::time::Instant;

/// The towers sharing the cores, by index.
pub const TOWERS: usize = 2;
pub const TEXT: usize = 0;
pub const IMAGE: usize = 1;
/// Their names, for messages.
pub const NAMES: [&str; TOWERS] = ["text", "image"];

struct State {
    /// When `work` was last brought up to date.
    last: Instant,
    busy: [bool; TOWERS],
    /// Each tower's share of the cores, integrated over time, in ns.
    work: [f64; TOWERS],
}

/// The towers' accumulated shares of the cores.
pub struct Share {
    state: Mutex<State>,
}

impl Share {
    pub fn new(now: Instant) -> Share {
        Share {
            state: Mutex::new(State {
                last: now,
                busy: [false; TOWERS],
                work: [0.0; TOWERS],
            }),
        }
    }

    /// Brings the shares up to `now` and returns them; then marks `tower` busy or idle.
    fn update(&self, now: Instant, set: Option<(usize, bool)>) -> [f64; TOWERS] {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let busy = s.busy.iter().filter(|&&b| b).count();
        if busy > 0 {
            let dt = now.saturating_duration_since(s.last).as_nanos() as f64 / busy as f64;
            for t in 0..TOWERS {
                if s.busy[t] {
                    s.work[t] += dt;
                }
            }
        }
        s.last = s.last.max(now);
        let work = s.work;
        if let Some((t, b)) = set {
            s.busy[t] = b;
        }
        work
    }

    /// `tower` starts a batch; returns its share so far (to subtract at the end).
    pub fn begin(&self, tower: usize, now: Instant) -> f64 {
        self.update(now, Some((tower, true)))[tower]
    }

    /// `tower` ends a batch; returns its share so far.
    pub fn end(&self, tower: usize, now: Instant) -> f64 {
        self.update(now, Some((tower, false)))[tower]
    }

    /// `tower`'s share so far.
    pub fn so_far(&self, tower: usize, now: Instant) -> f64 {
        self.update(now, None)[tower]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(x: u64) -> Duration {
        Duration::from_millis(x)
    }

    #[test]
    fn overlapping_batches_split_the_time_between_them() {
        let t0 = Instant::now();
        let s = Share::new(t0);
        let a0 = s.begin(0, t0);
        // Tower 0 alone for 100 ms, then both for 100 ms, then tower 1 alone for 40 ms.
        let b0 = s.begin(1, t0 + ms(100));
        let a1 = s.end(0, t0 + ms(200));
        assert_eq!(s.so_far(1, t0 + ms(220)) - b0, 70e6);
        let b1 = s.end(1, t0 + ms(240));
        assert_eq!(a1 - a0, 150e6);
        assert_eq!(b1 - b0, 90e6);
        // Idle time counts for no one.
        assert_eq!(s.begin(0, t0 + ms(1000)), a1);
    }
}
