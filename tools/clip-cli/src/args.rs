//! Value parsers shared by the commands: numbers that must be positive, thread counts within
//! the library's bound, so a bad value is refused by the argument parser, before any model
//! is built or memory allocated.

/// `--threads`: 0 (one per core) up to four per core, as the library allows.
pub fn threads(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    let max = clip::max_threads();
    if n > max {
        return Err(format!(
            "{n} is more than four per core ({} cores here: at most {max}; 0 means one per core)",
            clip::available_cores()
        ));
    }
    Ok(n)
}

/// A count that must be at least 1 (`--batch`, GEMM sizes, repetitions).
pub fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

/// Checks an input file before any work: it exists and is a regular file (not a folder, a
/// device or a pipe, which could be read without end). One wording for every command.
pub fn input_file(p: &std::path::Path) -> Result<(), String> {
    match std::fs::metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("{}: no such file", p.display()))
        }
        Err(e) => Err(format!("{}: cannot read: {e}", p.display())),
        Ok(m) if m.is_dir() => Err(format!(
            "{}: is a folder, not an image file{}",
            p.display(),
            " (to embed a folder, use clip index FOLDER --out INDEX)"
        )),
        Ok(m) if !m.is_file() => Err(format!(
            "{}: not a regular file (a device, pipe or socket)",
            p.display()
        )),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bounds() {
        assert_eq!(super::positive("3"), Ok(3));
        assert!(super::positive("0").is_err());
        assert!(super::positive("-1").is_err());
        assert_eq!(super::threads("0"), Ok(0));
        assert!(super::threads(&(clip::max_threads() + 1).to_string()).is_err());
        assert!(super::threads("100000").is_err());
    }
}
