//! Shared helpers for the workspace-level tests: fixture paths, reference dumps written by
//! `tools/reference/make_reference.py`, and a comparison that prints label, max |diff| and
//! its index, OK or NOT OK (as llm.c's test_gpt2 does).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A reference dump: float tensors by name, and the token ids.
pub struct Reference {
    pub tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    pub input_ids: Vec<Vec<u32>>,
}

impl Reference {
    /// Reads `reference.safetensors` (F32 tensors, I64 `input_ids`).
    pub fn load(path: &Path) -> Reference {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let st =
            safetensors::SafeTensors::deserialize(&bytes).expect("reference is valid safetensors");
        let mut tensors = HashMap::new();
        let mut input_ids = Vec::new();
        for (name, view) in st.tensors() {
            let shape = view.shape().to_vec();
            match view.dtype() {
                safetensors::Dtype::F32 => {
                    let v = view
                        .data()
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                    tensors.insert(name, (shape, v));
                }
                safetensors::Dtype::I64 | safetensors::Dtype::I32 => {
                    let w = if view.dtype() == safetensors::Dtype::I64 {
                        8
                    } else {
                        4
                    };
                    let flat: Vec<u32> = view
                        .data()
                        .chunks_exact(w)
                        .map(|c| {
                            let mut b = [0u8; 8];
                            b[..w].copy_from_slice(c);
                            i64::from_le_bytes(b) as u32
                        })
                        .collect();
                    let cols = *shape.last().unwrap_or(&1);
                    input_ids = flat.chunks(cols.max(1)).map(<[u32]>::to_vec).collect();
                }
                other => panic!("reference tensor {name} has unexpected dtype {other:?}"),
            }
        }
        Reference { tensors, input_ids }
    }

    pub fn get(&self, name: &str) -> &(Vec<usize>, Vec<f32>) {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("reference has no tensor {name}"))
    }

    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

/// Max |got - want|, with its index. Panics on a length mismatch.
pub fn max_abs_diff(got: &[f32], want: &[f32]) -> (f64, usize) {
    assert_eq!(
        got.len(),
        want.len(),
        "length mismatch: got {}, want {}",
        got.len(),
        want.len()
    );
    let mut worst = (0.0f64, 0usize);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let d = (*g as f64 - *w as f64).abs();
        if d > worst.0 || d.is_nan() {
            worst = (if d.is_nan() { f64::INFINITY } else { d }, i);
        }
    }
    worst
}

/// Prints `label  max|diff| = ...  at [i]  OK/NOT OK` and returns whether it is within `tol`.
pub fn report(label: &str, got: &[f32], want: &[f32], tol: f64) -> bool {
    let (d, i) = max_abs_diff(got, want);
    let ok = d <= tol;
    eprintln!(
        "{label:<40} max|diff| = {d:.3e} at [{i}]  {}",
        if ok { "OK" } else { "NOT OK" }
    );
    ok
}

/// Cosine similarity of two rows.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}
