//! The on-disk index of `clip index` / `clip search`: a folder holding
//!
//! ```text
//! manifest.json    {"format": 1, "model": ID, "dim": D, "image_size": S, "random_weights": B}
//! embeddings.npy   float32 [N, D], L2-normalised; row i belongs to line i of paths.txt
//! paths.txt        N absolute image paths, one per line
//! pending.f32      journal: rows appended batch by batch since the last consolidation
//! pending.txt      journal: their paths, appended after the rows
//! ```
//!
//! Every whole-file write goes through a temporary file and a rename. The journal is only
//! appended to (rows first, then paths, each synced), so after an interruption the first
//! `min(rows, complete lines)` entries of it are finished work; consolidation folds them into
//! `embeddings.npy` + `paths.txt` and deletes the journal. Paths already present are ignored
//! when reading the journal, so a stop at any point loses at most the batch in flight.

use crate::npy;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

const MANIFEST: &str = "manifest.json";
const EMBEDDINGS: &str = "embeddings.npy";
const PATHS: &str = "paths.txt";
const PENDING_ROWS: &str = "pending.f32";
const PENDING_PATHS: &str = "pending.txt";

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
            "format": 1,
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
        let num = |k: &str| {
            v[k].as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| bad(&format!("no {k}")))
        };
        Ok(Manifest {
            model: v["model"]
                .as_str()
                .ok_or_else(|| bad("no model"))?
                .to_string(),
            dim: num("dim")?,
            image_size: num("image_size")?,
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

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

/// An index in memory: the manifest, the paths and their normalised embeddings.
#[derive(Debug)]
pub struct Store {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub paths: Vec<String>,
    /// `[paths.len(), manifest.dim]` row-major.
    pub data: Vec<f32>,
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
        if data.len() / d.max(1) < paths.len() {
            return Err(format!(
                "{}: {} embeddings for {} paths; delete the index and run clip index again",
                dir.display(),
                data.len() / d.max(1),
                paths.len()
            ));
        }
        // Rows beyond the paths come from a consolidation stopped between its two renames;
        // their paths are still in the journal.
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
        let n = jpaths.len().min(jrows.len() / (4 * d.max(1)));
        for (i, p) in jpaths.into_iter().take(n).enumerate() {
            if seen.insert(p.clone()) {
                let row = &jrows[i * 4 * d..(i + 1) * 4 * d];
                data.extend(
                    row.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
                paths.push(p);
            }
        }
        Ok(Some(Store {
            dir: dir.to_path_buf(),
            manifest,
            paths,
            data,
        }))
    }

    /// Creates an empty index at `dir` (the folder may exist but must hold no index).
    pub fn create(dir: &Path, manifest: Manifest) -> Result<Store, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create folder: {e}", dir.display()))?;
        write_atomic(&dir.join(MANIFEST), manifest.to_json().as_bytes())?;
        let store = Store {
            dir: dir.to_path_buf(),
            manifest,
            paths: Vec::new(),
            data: Vec::new(),
        };
        store.consolidate()?;
        Ok(store)
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
        write_atomic(&self.dir.join(PATHS), text.as_bytes())?;
        for name in [PENDING_PATHS, PENDING_ROWS] {
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
    pub fn append(&mut self, paths: &[String], rows: &[f32]) -> Result<(), String> {
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
        let mut text = String::new();
        for p in paths {
            text.push_str(p);
            text.push('\n');
        }
        append(PENDING_PATHS, text.as_bytes())?;
        self.paths.extend_from_slice(paths);
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
    }

    #[test]
    fn journal_survives_a_reopen_and_a_cut_line() {
        let d = scratch("journal");
        let mut s = Store::create(&d, manifest()).unwrap();
        s.append(&["a".into(), "b".into()], &[1.0, 0.0, 0.0, 1.0])
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
