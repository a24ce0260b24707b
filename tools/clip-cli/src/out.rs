//! Writing an output file the way `cp` and shells do, without ever replacing what `--out`
//! names by something else: a regular file (or a new name) is written to a temporary file
//! beside it and renamed over it, so a reader never sees half a file; a symbolic link is
//! followed and its target written the same way (the link stays a link); a device or a pipe
//! (`/dev/stdout`, a FIFO) is written directly, never renamed over; a folder is refused.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the bytes for `path` go.
enum Target {
    /// Write a temporary file beside this path, then rename it over.
    Replace(PathBuf),
    /// Open and write in place (a character device, a FIFO, a socket).
    Direct(PathBuf),
}

fn target(path: &Path) -> std::io::Result<Target> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Target::Replace(path.to_path_buf()))
        }
        Err(e) => return Err(e),
        Ok(m) => m,
    };
    if meta.file_type().is_symlink() {
        // The link's final target, or where it points if that does not exist yet.
        let dest = match std::fs::canonicalize(path) {
            Ok(p) => p,
            Err(_) => {
                let link = std::fs::read_link(path)?;
                path.parent().unwrap_or(Path::new(".")).join(link)
            }
        };
        return match std::fs::metadata(&dest) {
            Ok(m) if m.is_dir() => Err(is_a_folder()),
            Ok(m) if !m.is_file() => Ok(Target::Direct(dest)),
            _ => Ok(Target::Replace(dest)),
        };
    }
    if meta.is_dir() {
        return Err(is_a_folder());
    }
    if meta.is_file() {
        Ok(Target::Replace(path.to_path_buf()))
    } else {
        Ok(Target::Direct(path.to_path_buf()))
    }
}

fn is_a_folder() -> std::io::Error {
    std::io::Error::other("is a folder; give a file name")
}

/// Writes what `fill` produces to `path` (see the module docs for how each kind of path is
/// treated).
pub fn write(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    match target(path)? {
        Target::Direct(p) => {
            let mut f = std::io::BufWriter::new(std::fs::OpenOptions::new().write(true).open(p)?);
            fill(&mut f)?;
            f.flush()
        }
        Target::Replace(p) => {
            let mut name = p.file_name().unwrap_or_default().to_os_string();
            name.push(format!(".tmp{}", std::process::id()));
            let tmp = p.with_file_name(name);
            let result = (|| {
                let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
                fill(&mut f)?;
                f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                std::fs::rename(&tmp, &p)
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result
        }
    }
}
