//! NumPy `.npy` files: writing float32 arrays (through a temporary file and a rename, so
//! an output is complete or absent) and reading float32, int32 and int64 arrays in C order.

use std::path::Path;

/// The `.npy` v1.0 header for a little-endian float32 C-order array, padded so
/// the data starts at a multiple of 64 bytes.
pub fn header(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_str = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_str}, }}");
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Writes `data` with `shape` to `path` (through a temporary file and a rename; see
/// `out.rs` for links and devices).
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> std::io::Result<()> {
    crate::out::write(path, |f| {
        f.write_all(&header(shape))?;
        for v in data {
            f.write_all(&v.to_le_bytes())?;
        }
        Ok(())
    })
}

/// A `.npy` array read from disk.
#[derive(Debug)]
pub enum Array {
    F32 { shape: Vec<usize>, data: Vec<f32> },
    I64 { shape: Vec<usize>, data: Vec<i64> },
}

/// The largest `.npy` read (4 GiB): a bound on what a file named as input can make us hold.
const MAX_BYTES: u64 = 4 << 30;

/// Reads a regular file of at most [`MAX_BYTES`]; errors name it.
pub fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f =
        std::fs::File::open(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let meta = f
        .metadata()
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    let mut bytes = Vec::new();
    f.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(format!(
            "{}: larger than {} GiB",
            path.display(),
            MAX_BYTES >> 30
        ));
    }
    Ok(bytes)
}

/// Reads a little-endian, C-order `.npy` of float32, int32 or int64. Errors name the file.
pub fn read(path: &Path) -> Result<Array, String> {
    parse(&read_file(path)?, &path.display().to_string())
}

/// Parses the bytes of a `.npy`; `name` labels errors.
pub fn parse(bytes: &[u8], name: &str) -> Result<Array, String> {
    let bad = |why: &str| format!("{name}: not a usable .npy file: {why}");
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("missing the \\x93NUMPY magic"));
    }
    let (hlen, hstart) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(&format!("format version {v}"))),
    };
    let header = bytes
        .get(hstart..hstart + hlen)
        .ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    let field = |key: &str| -> Option<&str> {
        let i = header.find(&format!("'{key}'"))?;
        let rest = header[i + key.len() + 2..]
            .trim_start()
            .strip_prefix(':')?
            .trim_start();
        Some(rest)
    };
    let descr = field("descr")
        .and_then(|r| r.strip_prefix('\''))
        .and_then(|r| r.split('\'').next())
        .ok_or_else(|| bad("no descr"))?;
    if field("fortran_order").is_some_and(|r| r.starts_with("True")) {
        return Err(bad("Fortran order is not supported; save with C order"));
    }
    let shape_txt = field("shape")
        .and_then(|r| r.strip_prefix('('))
        .and_then(|r| r.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| bad(&format!("shape entry {s:?}")))
        })
        .collect::<Result<_, _>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad("shape overflows"))?;
    let data = &bytes[hstart + hlen..];
    let width = match descr {
        "<f4" | "<i4" => 4,
        "<i8" => 8,
        other => return Err(bad(&format!("dtype {other} (expected <f4, <i4 or <i8)"))),
    };
    if data.len() != count.saturating_mul(width) {
        return Err(bad(&format!(
            "{} data bytes for shape {shape:?} of {descr}",
            data.len()
        )));
    }
    Ok(match descr {
        "<f4" => Array::F32 {
            shape,
            data: data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        },
        "<i4" => Array::I64 {
            shape,
            data: data
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
        },
        _ => Array::I64 {
            shape,
            data: data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        },
    })
}
