//! open_clip's inference transform (`image_transform`, torchvision on PIL images) against the
//! references `tools/reference/make_open_clip_image_reference.py` wrote: every resize mode
//! (shortest, longest, squash), bicubic and bilinear, sizes whose crops and pads round, a
//! fill colour: bit-exact.

mod common;

use clip_image::{Filter, OpenClipResize, PreprocessConfig, Preprocessor};
use common::{fixture_dir, read_npy};
use serde_json::Value;

#[test]
fn open_clip_transform_is_bit_exact() {
    let dir = fixture_dir().join("../open_clip");
    let text = std::fs::read_to_string(dir.join("manifest.json")).expect("manifest.json");
    let manifest: Value = serde_json::from_str(&text).unwrap();
    let cases = manifest["cases"].as_array().unwrap();
    assert!(cases.len() >= 90);
    let triple = |v: &Value| -> [f64; 3] {
        let a = v.as_array().unwrap();
        [
            a[0].as_f64().unwrap(),
            a[1].as_f64().unwrap(),
            a[2].as_f64().unwrap(),
        ]
    };
    let mut failures = Vec::new();
    for c in cases {
        let mode = match c["resize_mode"].as_str().unwrap() {
            "shortest" => OpenClipResize::Shortest,
            "longest" => OpenClipResize::Longest,
            _ => OpenClipResize::Squash,
        };
        let filter = match c["interpolation"].as_str().unwrap() {
            "bilinear" => Filter::Bilinear,
            _ => Filter::Bicubic,
        };
        let config = PreprocessConfig::open_clip(
            c["size"].as_u64().unwrap() as usize,
            mode,
            filter,
            c["fill_color"].as_u64().unwrap() as u8,
            triple(&c["mean"]),
            triple(&c["std"]),
        );
        let pre = Preprocessor {
            config,
            ..Preprocessor::default()
        };
        let image = fixture_dir().join(c["image"].as_str().unwrap());
        let got = pre.preprocess_file(&image);
        let label = format!("{c}");
        match (c.get("output"), got) {
            (Some(out), Ok(pv)) => {
                let want = read_npy(&format!("../open_clip/{}", out.as_str().unwrap())).to_f32();
                let diff = pv
                    .data
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                if pv.data.len() != want.len() || diff != 0.0 {
                    failures.push(format!("{label}: max |diff| {diff}"));
                }
            }
            (None, Err(_)) => {} // open_clip refused it too (a side that rounds to 0)
            (Some(_), Err(e)) => failures.push(format!("{label}: {e}")),
            (None, Ok(_)) => failures.push(format!("{label}: open_clip refused it, we did not")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {}:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
