//! Shared helpers for the image tests: a minimal `.npy` reader and fixture paths.
//!
//! Only what the fixtures use: little-endian `u1` and `f4`, C order, format v1-v3.

#![allow(dead_code)]

use std::path::PathBuf;

/// The fixture directory written by `tools/reference/make_image_reference.py`.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/image")
}

/// A loaded array: raw little-endian bytes, dtype string and shape.
pub struct Npy {
    pub descr: String,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl Npy {
    pub fn as_u8(&self) -> &[u8] {
        assert_eq!(self.descr, "|u1", "expected uint8");
        &self.bytes
    }

    pub fn to_f32(&self) -> Vec<f32> {
        assert_eq!(self.descr, "<f4", "expected little-endian float32");
        self.bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }
}

fn dict_value<'a>(header: &'a str, key: &str) -> &'a str {
    let start = header
        .find(&format!("'{key}':"))
        .expect("key in npy header")
        + key.len()
        + 3;
    header[start..].trim_start()
}

/// Reads a `.npy` file; panics (test helper) on anything unexpected.
pub fn read_npy(name: &str) -> Npy {
    let path = fixture_dir().join(name);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&data[..6], b"\x93NUMPY", "{name}: not an npy file");
    let (header_len, offset) = if data[6] == 1 {
        (usize::from(u16::from_le_bytes([data[8], data[9]])), 10)
    } else {
        (
            u32::from_le_bytes([data[8], data[9], data[10], data[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&data[offset..offset + header_len]).expect("ascii header");
    let descr = dict_value(header, "descr");
    let descr = descr[1..].split('\'').next().expect("descr").to_string();
    assert!(dict_value(header, "fortran_order").starts_with("False"));
    let shape_str = dict_value(header, "shape");
    let inner = &shape_str[1..shape_str.find(')').expect("shape tuple")];
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("shape int"))
        .collect();
    Npy {
        descr,
        shape,
        bytes: data[offset + header_len..].to_vec(),
    }
}

/// max |a - b| and its index.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> (f32, usize) {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .enumerate()
        .fold(
            (0.0, 0),
            |(m, mi), (i, d)| if d > m { (d, i) } else { (m, mi) },
        )
}

/// max |a - b| over bytes, and how many differ.
pub fn u8_diff(a: &[u8], b: &[u8]) -> (u8, usize) {
    assert_eq!(a.len(), b.len());
    let mut max = 0;
    let mut count = 0;
    for (x, y) in a.iter().zip(b) {
        let d = x.abs_diff(*y);
        if d > 0 {
            count += 1;
            max = max.max(d);
        }
    }
    (max, count)
}

/// Peak resident memory of this process so far (`VmHWM` in `/proc/self/status`), in kB.
pub fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM line")
}

/// Runs test `test` of this test binary again in a child process with environment
/// variables `envs` set, and returns the child's stdout. The test checks one of them to
/// know it is the child: a fresh process, so its peak memory is its own.
pub fn rerun_in_child(test: &str, envs: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .envs(envs.iter().copied())
        .output()
        .expect("child test process");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
