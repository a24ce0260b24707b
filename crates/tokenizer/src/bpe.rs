//! Byte-pair merging by merge rank, as `SimpleTokenizer.bpe`, and the shared
//! word cache.
//!
//! Each round of the reference takes the lowest-ranked pair present and
//! merges all its occurrences left to right. [`bpe_naive`] does exactly
//! that (O(n^2) per word, used for short words). [`bpe_heap`] gives the same
//! result in O(n log n): a linked list of symbols and a min-heap of
//! (rank, position); pairs created during a round wait until it ends, so
//! rounds happen in the reference's order even for unusual merge tables.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

/// A small multiplicative hasher (FxHash-style): keys here are short and not
/// attacker-chosen in a way that matters for a bounded cache.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        for &b in chunks.remainder() {
            self.write_u64(u64::from(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(SEED);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// `HashMap` with [`FxHasher`].
pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The merge table: pair of ids -> (rank, id of the merged symbol).
#[derive(Debug, Default)]
pub struct Merges {
    map: FxMap<u64, (u32, u32)>,
}

impl Merges {
    /// Records merge `(a, b) -> merged` with `rank`; a later duplicate wins,
    /// as in the reference's `dict(zip(merges, range(...)))`.
    pub fn insert(&mut self, a: u32, b: u32, rank: u32, merged: u32) {
        self.map.insert(key(a, b), (rank, merged));
    }

    /// Rank and result of merging `a` then `b`, if that pair is a merge.
    #[inline]
    pub fn get(&self, a: u32, b: u32) -> Option<(u32, u32)> {
        self.map.get(&key(a, b)).copied()
    }

    /// Number of merges.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there is no merge.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[inline]
fn key(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

/// Words with more symbols than this use [`bpe_heap`].
pub const NAIVE_MAX: usize = 48;

/// BPE of one word given as initial symbol ids; the result replaces `word`.
pub fn bpe(merges: &Merges, word: &mut Vec<u32>) {
    if word.len() <= NAIVE_MAX {
        bpe_naive(merges, word);
    } else {
        bpe_heap(merges, word);
    }
}

/// The reference algorithm: repeatedly merge every occurrence of the
/// lowest-ranked pair, left to right.
pub fn bpe_naive(merges: &Merges, word: &mut Vec<u32>) {
    while word.len() > 1 {
        let mut best: Option<(u32, u32, u32, u32)> = None;
        for w in word.windows(2) {
            if let Some((rank, merged)) = merges.get(w[0], w[1]) {
                if best.is_none_or(|b| rank < b.0) {
                    best = Some((rank, w[0], w[1], merged));
                }
            }
        }
        let Some((_, first, second, merged)) = best else {
            return;
        };
        let mut out = 0;
        let mut i = 0;
        while i < word.len() {
            if word[i] == first && i + 1 < word.len() && word[i + 1] == second {
                word[out] = merged;
                i += 2;
            } else {
                word[out] = word[i];
                i += 1;
            }
            out += 1;
        }
        word.truncate(out);
    }
}

/// Same result as [`bpe_naive`] in O(n log n) for a word of n symbols.
pub fn bpe_heap(merges: &Merges, word: &mut Vec<u32>) {
    let n = word.len();
    if n < 2 {
        return;
    }
    const NONE: u32 = u32::MAX;
    let mut ids = word.clone();
    let mut next: Vec<u32> = (1..=n as u32).collect();
    next[n - 1] = NONE;
    let mut prev: Vec<u32> = (0..n as u32).map(|i| i.wrapping_sub(1)).collect();
    prev[0] = NONE;
    let mut alive = vec![true; n];
    // Entries: (rank, left position, left id, right id).
    let mut heap: BinaryHeap<Reverse<(u32, u32, u32, u32)>> = BinaryHeap::new();
    for i in 0..n - 1 {
        if let Some((rank, _)) = merges.get(ids[i], ids[i + 1]) {
            heap.push(Reverse((rank, i as u32, ids[i], ids[i + 1])));
        }
    }
    // Pairs made during a round wait in `pending` until that round ends; a
    // pair never has the rank of the round that made it.
    let mut pending = Vec::new();
    while let Some(Reverse((rank, pos, a, b))) = heap.pop() {
        let l = pos as usize;
        let valid = alive[l] && ids[l] == a && next[l] != NONE && ids[next[l] as usize] == b;
        if let (true, Some((_, merged))) = (valid, merges.get(a, b)) {
            let r = next[l] as usize;
            ids[l] = merged;
            alive[r] = false;
            next[l] = next[r];
            if next[r] != NONE {
                prev[next[r] as usize] = l as u32;
            }
            if prev[l] != NONE {
                let p = prev[l] as usize;
                if let Some((rk, _)) = merges.get(ids[p], merged) {
                    pending.push(Reverse((rk, p as u32, ids[p], merged)));
                }
            }
            if next[l] != NONE {
                let q = next[l] as usize;
                if let Some((rk, _)) = merges.get(merged, ids[q]) {
                    pending.push(Reverse((rk, l as u32, merged, ids[q])));
                }
            }
        }
        if heap.peek().is_none_or(|e| e.0 .0 != rank) {
            heap.extend(pending.drain(..));
        }
    }
    word.clear();
    let mut i = 0;
    loop {
        word.push(ids[i]);
        if next[i] == NONE {
            break;
        }
        i = next[i] as usize;
    }
}

const SHARDS: usize = 32;

/// One shard of the cache: pre-token bytes -> ids.
type Shard = Mutex<FxMap<Box<[u8]>, Box<[u32]>>>;

/// A bounded, thread-safe cache from pre-token bytes to BPE ids.
///
/// 32 mutex-guarded shards; a shard that reaches its share of the capacity
/// is cleared (cheap, and bounds memory). Words longer than
/// [`WordCache::MAX_KEY`] bytes are not cached.
pub struct WordCache {
    shards: Vec<Shard>,
    per_shard: usize,
}

impl std::fmt::Debug for WordCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WordCache {{ capacity: {} }}", self.per_shard * SHARDS)
    }
}

impl WordCache {
    /// Longest cached key, in bytes.
    pub const MAX_KEY: usize = 64;

    /// A cache of at most about `capacity` words.
    pub fn new(capacity: usize) -> Self {
        WordCache {
            shards: (0..SHARDS).map(|_| Mutex::new(FxMap::default())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    #[inline]
    fn shard(&self, key: &[u8]) -> &Shard {
        let mut h = FxHasher::default();
        h.write(key);
        &self.shards[(h.finish() >> 59) as usize % SHARDS]
    }

    /// Appends the cached ids of `key` to `out`; false when absent.
    #[inline]
    pub fn get_into(&self, key: &[u8], out: &mut Vec<u32>) -> bool {
        if key.len() > Self::MAX_KEY {
            return false;
        }
        let shard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        match shard.get(key) {
            Some(ids) => {
                out.extend_from_slice(ids);
                true
            }
            None => false,
        }
    }

    /// Remembers `ids` for `key`.
    pub fn insert(&self, key: &[u8], ids: &[u32]) {
        if key.len() > Self::MAX_KEY {
            return;
        }
        let mut shard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= self.per_shard {
            shard.clear();
        }
        shard.insert(key.into(), ids.into());
    }
}
