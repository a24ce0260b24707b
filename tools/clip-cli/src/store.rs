//! The on-disk index of `clip index` / `clip search`: a folder holding
//!
//! ```text
//! manifest.json    {"format": 2, "model": ID, "dim": D, "image_size": S, "random_weights": B}
//! embeddings.npy   float32 [N, D], L2-normalised; row i belongs to line i of paths.txt
//! paths.txt        N absolute image paths, one per line
//! stamps.txt       N lines "SIZE MTIME_NS": the file as it was when its row was made
//! pending.f32      journal: rows appended batch by batch since the last consolidation
//! pending.stamps   journal: their stamps, appended after the rows
//! pending.txt      journal: their paths, appended last
//! lock             held (flock) by the one `clip index` writing the index
//! ```
//!
//! Every whole-file write goes through a temporary file and a rename. The journal is only
//! appended to (rows, then stamps, then paths, each synced), so after an interruption the
//! first `min(rows, complete path lines)` entries of it are finished work; consolidation folds
//! them into the main files and deletes the journal. Paths already present are ignored when
//! reading the journal, so a stop at any point loses at most the batch in flight.
//!
//! Format 1 (no stamps) is read too: its entries take the stamp their file has when the index
//! is next written (the upgrade trusts they have not changed since they were embedded).
//! The manifest and journal are read as hostile input: sizes are bounded, arithmetic checked.

use crate::npy;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

const MANIFEST: &str = "manifest.json";
const EMBEDDINGS: &str = "embeddings.npy";
const PATHS: &str = "paths.txt";
const STAMPS: &str = "stamps.txt";
const PENDING_ROWS: &str = "pending.f32";
const PENDING_STAMPS: &str = "pending.stamps";
const PENDING_PATHS: &str = "pending.txt";
const LOCK: &str = "lock";

/// Bounds on the manifest's numbers (CLIP's widths are at most a few thousand).
const MAX_DIM: usize = 1 << 16;
const MAX_IMAGE_SIZE: usize = 1 << 14;

/// A file's size and modification time, recorded with its embedding: a file whose stamp
/// differs has changed since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i128,
}

impl Stamp {
    /// The stamp of `path` now (`None` if it cannot be read).
    pub fn of(path: &Path) -> Option<Stamp> {
        let m = std::fs::metadata(path).ok()?;
        let mtime = m.modified().ok()?;
        let ns = match mtime.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        Some(Stamp {
            size: m.len(),
            mtime_ns: ns,
        })
    }

    fn line(&self) -> String {
        format!("{} {}\n", self.size, self.mtime_ns)
    }

    fn parse(line: &str) -> Option<Stamp> {
        let (a, b) = line.split_once(' ')?;
        Some(Stamp {
            size: a.parse().ok()?,
            mtime_ns: b.parse().ok()?,
        })
    }
}

/// Which model made an index.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub model: String,
    pub dim: usize,
    pub image_size: usize,
    pub random_weights: bool,
}

impl Manifest {
    fn to_json(&self) -> String {
        serde_json::json!({
            "format": 2,
            "model": self.model,
            "dim": self.dim,
            "image_size": self.image_size,
            "random_weights": self.random_weights,
        })
        .to_string()
    }

    fn from_json(text: &str, path: &Path) -> Result<Manifest, String> {
        let bad = |why: &str| format!("{}: not an index manifest: {why}", path.display());
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
        let num = |k: &str, max: usize| {
            let n = v[k].as_u64().ok_or_else(|| bad(&format!("no {k}")))?;
            match usize::try_from(n) {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(bad(&format!("{k} = {n} is not in 1..={max}"))),
            }
        };
        if let Some(f) = v["format"].as_u64() {
            if f > 2 {
                return Err(bad(&format!(
                    "format {f} is newer than this program (2); update clip"
                )));
            }
        }
        Ok(Manifest {
            model: v["model"]
                .as_str()
                .ok_or_else(|| bad("no model"))?
                .to_string(),
            dim: num("dim", MAX_DIM)?,
            image_size: num("image_size", MAX_IMAGE_SIZE)?,
            random_weights: v["random_weights"].as_bool().unwrap_or(false),
        })
    }

    /// Describes the model for messages.
    pub fn describe(&self) -> String {
        if self.random_weights {
            format!("random weights ({} dims)", self.dim)
        } else {
            format!("the model at {} ({} dims)", self.model, self.dim)
        }
    }
}

/// Takes the writer lock of the index at `dir` (an flock on `dir/lock`), or refuses: two
/// writers would interleave their rows. Released when the file is closed, however the
/// process ends.
fn lock_writer(dir: &Path) -> Result<std::fs::File, String> {
    let p = dir.join(LOCK);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|e| format!("{}: cannot open: {e}", p.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "{}: another clip index is writing this index; wait for it to finish",
            dir.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("{}: cannot lock: {e}", p.display())),
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename (see `out.rs`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    crate::out::write(path, |f| f.write_all(bytes))
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

/// An index in memory: the manifest, the paths and their normalised embeddings.
#[derive(Debug)]
pub struct Store {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub paths: Vec<String>,
    /// One per path; `None` for entries of a format-1 index (no stamp recorded).
    pub stamps: Vec<Option<Stamp>>,
    /// `[paths.len(), manifest.dim]` row-major.
    pub data: Vec<f32>,
    /// The writer's lock, held while this store is open for writing.
    lock: Option<std::fs::File>,
}

fn read_lines(path: &Path) -> Result<Vec<String>, String> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            // Only complete lines: a line without its newline was cut by an interruption.
            let complete = match text.rfind('\n') {
                Some(i) => &text[..i + 1],
                None => "",
            };
            Ok(complete.lines().map(str::to_string).collect())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
    }
}

impl Store {
    /// Opens the index at `dir`; `Ok(None)` when the folder has no manifest.
    pub fn open(dir: &Path) -> Result<Option<Store>, String> {
        let mpath = dir.join(MANIFEST);
        let text = match std::fs::read_to_string(&mpath) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: cannot read: {e}", mpath.display())),
        };
        let manifest = Manifest::from_json(&text, &mpath)?;
        let d = manifest.dim;
        let mut paths = read_lines(&dir.join(PATHS))?;
        let mut stamps: Vec<Option<Stamp>> = read_lines(&dir.join(STAMPS))?
            .iter()
            .map(|l| Stamp::parse(l))
            .collect();
        stamps.resize(paths.len(), None);
        let mut data = Vec::new();
        let epath = dir.join(EMBEDDINGS);
        if epath.is_file() {
            match npy::read(&epath)? {
                npy::Array::F32 { shape, data: v } if shape.len() == 2 && shape[1] == d => data = v,
                _ => {
                    return Err(format!(
                        "{}: expected float32 [N, {d}] embeddings",
                        epath.display()
                    ))
                }
            }
        }
        if data.len() / d < paths.len() {
            return Err(format!(
                "{}: {} embeddings for {} paths; delete the index and run clip index again",
                dir.display(),
                data.len() / d,
                paths.len()
            ));
        }
        // Rows beyond the paths come from a consolidation stopped between its renames; their
        // paths are still in the journal.
        data.truncate(paths.len() * d);
        let mut seen: HashSet<String> = paths.iter().cloned().collect();
        let jrows = match std::fs::read(dir.join(PENDING_ROWS)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(format!(
                    "{}: cannot read: {e}",
                    dir.join(PENDING_ROWS).display()
                ))
            }
        };
        let jpaths = read_lines(&dir.join(PENDING_PATHS))?;
        let jstamps = read_lines(&dir.join(PENDING_STAMPS))?;
        // `d` is bounded by the manifest check, so the row size cannot overflow.
        let row_bytes = 4 * d;
        let n = jpaths.len().min(jrows.len() / row_bytes);
        for (i, p) in jpaths.into_iter().take(n).enumerate() {
            if seen.insert(p.clone()) {
                let row = &jrows[i * row_bytes..(i + 1) * row_bytes];
                data.extend(
                    row.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
                paths.push(p);
                stamps.push(jstamps.get(i).and_then(|l| Stamp::parse(l)));
            }
        }
        Ok(Some(Store {
            dir: dir.to_path_buf(),
            manifest,
            paths,
            stamps,
            data,
            lock: None,
        }))
    }

    /// Creates an empty index at `dir` (the folder may exist but must hold no index).
    #[cfg(test)]
    pub fn create(dir: &Path, manifest: Manifest) -> Result<Store, String> {
        match Store::acquire(dir)? {
            (lock, None) => Store::create_locked(dir, manifest, lock),
            (_, Some(_)) => Err(format!("{}: already an index", dir.display())),
        }
    }

    /// Takes the writer lock of `dir` (creating the folder if needed) and opens the index in
    /// it if there is one. The lock comes first, so of two writers started together the
    /// second is refused, whether the index exists yet or not. A folder that holds other
    /// files and no index is refused, without writing into it.
    pub fn acquire(dir: &Path) -> Result<(std::fs::File, Option<Store>), String> {
        let has_index = dir.join(MANIFEST).is_file();
        let foreign = !has_index
            && std::fs::read_dir(dir).is_ok_and(|d| {
                d.filter_map(Result::ok).any(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    // A lone lock (and temporaries) is an index being created, or one whose
                    // creation stopped before its manifest.
                    name != LOCK && !name.starts_with(MANIFEST)
                })
            });
        if foreign {
            return Err(format!(
                "{}: a folder that is not an index; choose a new --out",
                dir.display()
            ));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create folder: {e}", dir.display()))?;
        let lock = lock_writer(dir)?;
        let store = Store::open(dir)?;
        Ok((lock, store))
    }

    /// Creates an empty index at `dir` under a lock already held (see [`Store::acquire`]).
    pub fn create_locked(
        dir: &Path,
        manifest: Manifest,
        lock: std::fs::File,
    ) -> Result<Store, String> {
        write_atomic(&dir.join(MANIFEST), manifest.to_json().as_bytes())?;
        let store = Store {
            dir: dir.to_path_buf(),
            manifest,
            paths: Vec::new(),
            stamps: Vec::new(),
            data: Vec::new(),
            lock: Some(lock),
        };
        store.consolidate()?;
        Ok(store)
    }

    /// Keeps `lock` with the store (released when it is dropped).
    pub fn hold(&mut self, lock: std::fs::File) {
        self.lock = Some(lock);
    }

    /// Drops the entries at `remove` (sorted indices) from memory; [`Store::consolidate`]
    /// makes it durable.
    pub fn remove(&mut self, remove: &[usize]) {
        let d = self.manifest.dim;
        let drop: HashSet<usize> = remove.iter().copied().collect();
        let mut keep = 0;
        for i in 0..self.paths.len() {
            if drop.contains(&i) {
                continue;
            }
            self.paths.swap(keep, i);
            self.stamps.swap(keep, i);
            self.data.copy_within(i * d..(i + 1) * d, keep * d);
            keep += 1;
        }
        self.paths.truncate(keep);
        self.stamps.truncate(keep);
        self.data.truncate(keep * d);
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        let d = self.manifest.dim;
        &self.data[i * d..(i + 1) * d]
    }

    /// Writes everything in memory as `embeddings.npy` + `paths.txt` and drops the journal.
    pub fn consolidate(&self) -> Result<(), String> {
        let epath = self.dir.join(EMBEDDINGS);
        npy::write_f32(&epath, &[self.len(), self.manifest.dim], &self.data)
            .map_err(|e| format!("{}: cannot write: {e}", epath.display()))?;
        let mut text = String::new();
        for p in &self.paths {
            text.push_str(p);
            text.push('\n');
        }
        let stamps: String = self
            .stamps
            .iter()
            .map(|s| s.map_or_else(|| "? ?\n".to_string(), |s| s.line()))
            .collect();
        // Stamps first: a stop between the renames leaves stamps a reopen ignores past the
        // paths, never paths whose stamps belong to other rows.
        write_atomic(&self.dir.join(STAMPS), stamps.as_bytes())?;
        write_atomic(&self.dir.join(PATHS), text.as_bytes())?;
        for name in [PENDING_PATHS, PENDING_STAMPS, PENDING_ROWS] {
            let p = self.dir.join(name);
            if let Err(e) = std::fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(format!("{}: cannot remove: {e}", p.display()));
                }
            }
        }
        Ok(())
    }

    /// Adds finished rows: appended (and synced) to the journal, then kept in memory.
    pub fn append(
        &mut self,
        paths: &[String],
        stamps: &[Option<Stamp>],
        rows: &[f32],
    ) -> Result<(), String> {
        let append = |name: &str, bytes: &[u8]| -> Result<(), String> {
            let p = self.dir.join(name);
            let r = (|| {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)?;
                f.write_all(bytes)?;
                f.sync_data()
            })();
            r.map_err(|e| format!("{}: cannot write: {e}", p.display()))
        };
        let bytes: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
        append(PENDING_ROWS, &bytes)?;
        let st: String = stamps
            .iter()
            .map(|s| s.map_or_else(|| "? ?\n".to_string(), |s| s.line()))
            .collect();
        append(PENDING_STAMPS, st.as_bytes())?;
        let mut text = String::new();
        for p in paths {
            text.push_str(p);
            text.push('\n');
        }
        append(PENDING_PATHS, text.as_bytes())?;
        self.paths.extend_from_slice(paths);
        self.stamps.extend_from_slice(stamps);
        self.data.extend_from_slice(rows);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("clip-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn manifest() -> Manifest {
        Manifest {
            model: "/models/tiny".into(),
            dim: 2,
            image_size: 16,
            random_weights: false,
        }
    }

    #[test]
    fn manifest_round_trips() {
        let m = manifest();
        let back = Manifest::from_json(&m.to_json(), Path::new("m.json")).unwrap();
        assert_eq!(back, m);
        assert!(Manifest::from_json("{}", Path::new("m.json")).is_err());
        let huge = m
            .to_json()
            .replace("\"dim\":2", "\"dim\":4611686018427387904");
        assert!(Manifest::from_json(&huge, Path::new("m.json")).is_err());
    }

    #[test]
    fn journal_survives_a_reopen_and_a_cut_line() {
        let d = scratch("journal");
        let mut s = Store::create(&d, manifest()).unwrap();
        let st = Some(Stamp {
            size: 5,
            mtime_ns: 7,
        });
        s.append(
            &["a".into(), "b".into()],
            &[st, None],
            &[1.0, 0.0, 0.0, 1.0],
        )
        .unwrap();
        // A stop in the middle of the next batch: a row without its path, half a path.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(d.join(PENDING_ROWS))
            .unwrap();
        f.write_all(&[0u8; 8]).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(d.join(PENDING_PATHS))
            .unwrap();
        f.write_all(b"c").unwrap();
        let s = Store::open(&d).unwrap().unwrap();
        assert_eq!(s.paths, ["a", "b"]);
        assert_eq!(s.data, [1.0, 0.0, 0.0, 1.0]);
        s.consolidate().unwrap();
        assert!(!d.join(PENDING_ROWS).exists());
        let s = Store::open(&d).unwrap().unwrap();
        assert_eq!(s.paths, ["a", "b"]);
        assert_eq!(s.stamps, [st, None]);
        assert_eq!(s.row(1), [0.0, 1.0]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_folder_without_manifest_is_no_index() {
        let d = scratch("none");
        std::fs::create_dir_all(&d).unwrap();
        assert!(Store::open(&d).unwrap().is_none());
        let _ = std::fs::remove_dir_all(&d);
    }
}
