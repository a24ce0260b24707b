//! Reading one input shard of `clip embed-shards` as a stream of samples: a webdataset tar
//! (plain or gzip-compressed, as img2dataset writes it), a folder of files, or a parquet file
//! with an image-bytes column.
//!
//! A sample is what webdataset calls one: the files sharing a key, the name up to the first
//! dot of the basename (with its folder), e.g. `00001.jpg`, `00001.txt`, `00001.json`. Its
//! image is the first `jpg`/`jpeg`/`png`/`webp` member, its caption the `txt` member, its url
//! the `url` field of the `json` member. Members of a sample are consecutive in a tar (as
//! webdataset requires); a folder is grouped by key over its sorted paths.
//!
//! Not here: decoding images (the library does it, and reports what it cannot read),
//! embedding, writing outputs (`shards.rs`, `parquet_io.rs`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest member or file read into memory (larger ones are failed samples): an image
/// this big would be refused by the decoder's memory budget anyway.
const MAX_MEMBER: u64 = 256 << 20;

/// One sample of a shard.
#[derive(Debug, Default)]
pub struct Sample {
    pub key: String,
    /// The encoded image; `None` when the sample has none or it could not be read.
    pub image: Option<Vec<u8>>,
    pub caption: Option<String>,
    pub url: Option<String>,
    /// Where the image is: `SHARD/MEMBER` for a tar, the file for a folder, `SHARD#ROW` for
    /// parquet.
    pub image_path: String,
    /// Why the sample cannot be embedded, known before decoding (no image, webp, too large).
    pub problem: Option<String>,
}

/// A shard given on the command line.
#[derive(Debug, Clone)]
pub struct Shard {
    pub path: PathBuf,
    /// The name outputs take: `img_emb/img_emb_{id}.npy`.
    pub id: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Tar,
    Folder,
    Parquet,
}

impl Shard {
    /// Recognises a shard by what it is: a folder, a `.parquet` file, or a tar (any other
    /// file; gzip is detected by its magic bytes). Its id is the name without the `.tar`,
    /// `.tar.gz`, `.tgz` or `.parquet` ending.
    pub fn new(path: &Path) -> Result<Shard, String> {
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("{}: no such shard", path.display()),
            _ => format!("{}: cannot read: {e}", path.display()),
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lower = name.to_ascii_lowercase();
        let kind = if meta.is_dir() {
            Kind::Folder
        } else if !meta.is_file() {
            return Err(format!(
                "{}: not a regular file or folder (a device, pipe or socket)",
                path.display()
            ));
        } else if lower.ends_with(".parquet") {
            Kind::Parquet
        } else {
            Kind::Tar
        };
        let id = [".tar.gz", ".tgz", ".tar", ".parquet"]
            .iter()
            .find_map(|ext| {
                lower
                    .ends_with(ext)
                    .then(|| name[..name.len() - ext.len()].to_string())
            })
            .unwrap_or(name);
        if id.is_empty() || id.contains(['/', '\n']) || id.starts_with('.') {
            return Err(format!(
                "{}: cannot name outputs after this shard; rename it",
                path.display()
            ));
        }
        let path = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Shard { path, id, kind })
    }

    /// Calls `f` with each sample of the shard, in order, until the end or an error (of
    /// the archive, or from `f`).
    pub fn for_each(
        &self,
        columns: &Columns,
        f: &mut dyn FnMut(Sample) -> Result<(), String>,
    ) -> Result<(), String> {
        match self.kind {
            Kind::Tar => read_tar(&self.path, f),
            Kind::Folder => read_folder(&self.path, f),
            Kind::Parquet => crate::parquet_io::read_samples(&self.path, columns, f),
        }
    }
}

/// Column names of parquet shards (`None`: found by the usual names).
#[derive(Debug, Clone, Default)]
pub struct Columns {
    pub image: Option<String>,
    pub caption: Option<String>,
    pub key: Option<String>,
}

/// `(key, extension)` of a member name as webdataset splits it: the key is the path up to the
/// first dot of the basename; the extension the rest, lower-cased. `None` for names without.
pub fn split_key(name: &str) -> Option<(&str, String)> {
    let base_start = name.rfind('/').map_or(0, |i| i + 1);
    let dot = name[base_start..].find('.')? + base_start;
    let key = &name[..dot];
    if key.is_empty() || dot == base_start {
        return None;
    }
    Some((key, name[dot + 1..].to_ascii_lowercase()))
}

/// The parts of a sample as its members arrive.
#[derive(Default)]
struct Builder {
    sample: Sample,
    has_image: bool,
}

impl Builder {
    fn new(key: &str) -> Builder {
        Builder {
            sample: Sample {
                key: key.to_string(),
                ..Sample::default()
            },
            has_image: false,
        }
    }

    /// Adds a member; `read` gives its bytes (only called for members that are used).
    fn add(
        &mut self,
        ext: &str,
        where_: String,
        size: u64,
        read: impl FnOnce() -> std::io::Result<Vec<u8>>,
    ) -> Result<(), String> {
        let is_image = is_image_ext(ext);
        if !(is_image || ext == "txt" || ext == "json") || (is_image && self.has_image) {
            return Ok(());
        }
        if size > MAX_MEMBER {
            if is_image {
                self.has_image = true;
                self.sample.image_path = where_;
                self.sample.problem = Some(format!(
                    "larger than {} MiB ({size} bytes)",
                    MAX_MEMBER >> 20
                ));
            }
            return Ok(());
        }
        let bytes = read().map_err(|e| format!("{where_}: cannot read: {e}"))?;
        if is_image {
            self.has_image = true;
            self.sample.image_path = where_;
            if ext == "webp" {
                self.sample.problem =
                    Some("WebP images are not supported (PNG and JPEG only)".into());
            } else {
                self.sample.image = Some(bytes);
            }
        } else if ext == "txt" {
            self.sample.caption = Some(String::from_utf8_lossy(&bytes).into_owned());
        } else if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            self.sample.url = v["url"].as_str().map(str::to_string);
        }
        Ok(())
    }

    fn finish(mut self, fallback_path: impl FnOnce() -> String) -> Sample {
        if !self.has_image {
            self.sample.image_path = fallback_path();
            self.sample.problem = Some("no image member (jpg, jpeg, png or webp)".into());
        }
        self.sample
    }
}

/// The samples of a tar, read as a stream (one sample in memory at a time).
fn read_tar(path: &Path, f: &mut dyn FnMut(Sample) -> Result<(), String>) -> Result<(), String> {
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let mut magic = [0u8; 2];
    let n = file
        .read(&mut magic)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let raw = std::io::BufReader::new(std::io::Cursor::new(magic[..n].to_vec()).chain(file));
    let reader: Box<dyn Read> = if magic[..n] == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let shard = path.display().to_string();
    let bad = |e: std::io::Error| format!("{shard}: unreadable tar archive: {e}");
    let mut archive = tar::Archive::new(reader);
    let mut pending: Option<Builder> = None;
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some((key, ext)) = split_key(&name) else {
            continue;
        };
        if pending.as_ref().is_some_and(|b| b.sample.key != key) {
            let b = pending.take().expect("checked");
            let key = b.sample.key.clone();
            f(b.finish(|| format!("{shard}/{key}")))?;
        }
        let b = pending.get_or_insert_with(|| Builder::new(key));
        let size = entry.size();
        b.add(&ext, format!("{shard}/{name}"), size, || {
            let mut v = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut v)?;
            Ok(v)
        })
        .map_err(|e| format!("unreadable tar archive: {e}"))?;
    }
    if let Some(b) = pending {
        let key = b.sample.key.clone();
        f(b.finish(|| format!("{shard}/{key}")))?;
    }
    Ok(())
}

/// The samples of a folder: its files (recursively, sorted) grouped by key; files are read
/// when their sample is taken. Only keys with an image member are samples (a folder also
/// holds other files).
fn read_folder(dir: &Path, f: &mut dyn FnMut(Sample) -> Result<(), String>) -> Result<(), String> {
    let mut files = Vec::new();
    walk(dir, "", &mut files)?;
    files.sort();
    let mut groups: BTreeMap<String, Vec<(String, PathBuf)>> = BTreeMap::new();
    for (rel, path) in files {
        if let Some((key, ext)) = split_key(&rel) {
            groups.entry(key.to_string()).or_default().push((ext, path));
        }
    }
    for (key, members) in groups {
        if !members.iter().any(|(e, _)| is_image_ext(e)) {
            continue;
        }
        let mut b = Builder::new(&key);
        for (ext, path) in members {
            let size = std::fs::metadata(&path).map_or(0, |m| m.len());
            let shown = path.display().to_string();
            // A file that vanished or cannot be read is its sample's problem, not the shard's.
            if let Err(e) = b.add(&ext, shown.clone(), size, || {
                let mut v = Vec::new();
                std::fs::File::open(&path)?
                    .take(MAX_MEMBER + 1)
                    .read_to_end(&mut v)?;
                Ok(v)
            }) {
                if is_image_ext(&ext) {
                    b.has_image = true;
                    b.sample.image_path = shown;
                    b.sample.problem = Some(e);
                }
            }
        }
        f(b.finish(String::new))?;
    }
    Ok(())
}

fn is_image_ext(ext: &str) -> bool {
    matches!(ext, "jpg" | "jpeg" | "png" | "webp")
}

/// Files under `dir` as (relative path with `/`, path); links to folders are not followed.
fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{}: cannot list: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: cannot list: {e}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = format!("{prefix}{name}");
        let ft = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if ft.is_dir() {
            walk(&path, &format!("{rel}/"), out)?;
        } else if path.is_file() {
            out.push((rel, path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_key;

    #[test]
    fn keys_split_as_webdataset_does() {
        assert_eq!(split_key("00001.jpg"), Some(("00001", "jpg".into())));
        assert_eq!(
            split_key("a/b.c/x.seg.PNG"),
            Some(("a/b.c/x", "seg.png".into()))
        );
        assert_eq!(split_key("noext"), None);
        assert_eq!(split_key("dir/.hidden"), None);
    }
}
