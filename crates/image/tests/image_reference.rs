//! Preprocessing against Pillow + transformers 5 (`CLIPImageProcessorPil`) on the
//! committed fixtures: PNG and JPEG must be bit-exact after decoding and resize,
//! and within 1e-6 (in practice 0) after normalisation.

mod common;

use clip_image::{
    decode_file, AlphaMode, DecodeOptions, PreprocessConfig, Preprocessor, ResizeTarget,
};
use common::{fixture_dir, max_abs_diff, read_npy, u8_diff};
use serde_json::Value;

struct Case {
    name: String,
    file: String,
    kind: String,
    preprocessor: Preprocessor,
    decoded: Option<String>,
    resized: Option<String>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixture_dir().join("manifest.json")).expect("manifest.json");
    let manifest: Value = serde_json::from_str(&text).expect("manifest JSON");
    let s = |c: &Value, k: &str| c[k].as_str().expect(k).to_string();
    let n = |c: &Value, k: &str| c[k].as_u64().expect(k) as usize;
    manifest["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let crop = n(c, "crop");
            let config = PreprocessConfig {
                size: ResizeTarget::ShortestEdge(n(c, "shortest_edge")),
                crop_height: crop,
                crop_width: crop,
                ..PreprocessConfig::default()
            };
            let decode = DecodeOptions {
                alpha: if c["drop_alpha"] == true {
                    AlphaMode::Drop
                } else {
                    AlphaMode::CompositeOverWhite
                },
                apply_exif_orientation: c["exif"] == true,
                ..DecodeOptions::default()
            };
            Case {
                name: s(c, "name"),
                file: s(c, "file"),
                kind: s(c, "kind"),
                preprocessor: Preprocessor { config, decode },
                decoded: c["decoded"].as_str().map(str::to_string),
                resized: c["resized"].as_str().map(str::to_string),
            }
        })
        .collect()
}

/// Runs one case: (resized max |diff| u8, differing bytes, pixel_values max |diff|).
fn run(case: &Case) -> (u8, usize, f32) {
    let path = fixture_dir().join(&case.file);
    let img = decode_file(&path, &case.preprocessor.decode).unwrap_or_else(|e| panic!("{e}"));
    // The u8 resize output (not stored for the one full-size case).
    let (rmax, rcount) = match case.resized.as_deref() {
        Some(name) => {
            let resized = case.preprocessor.resize(&img).expect("resize");
            let want = read_npy(name);
            let shape = vec![resized.height, resized.width, 3];
            assert_eq!(want.shape, shape, "{}: resized shape", case.name);
            u8_diff(&resized.data, want.as_u8())
        }
        None => (0, 0),
    };
    let pv = case.preprocessor.preprocess_rgb(&img).expect("preprocess");
    let want_pv = read_npy(&format!("{}.pixel_values.npy", case.name));
    assert_eq!(
        want_pv.shape,
        pv.shape[1..].to_vec(),
        "{}: pixel_values shape",
        case.name
    );
    let (pmax, _) = max_abs_diff(&pv.data, &want_pv.to_f32());
    (rmax, rcount, pmax)
}

#[test]
fn png_bit_exact_with_pillow() {
    let mut failures = Vec::new();
    let mut count = 0;
    for case in cases().iter().filter(|c| c.kind == "png") {
        let (rmax, rcount, pmax) = run(case);
        let ok = rmax == 0 && pmax <= 1e-6;
        println!(
            "{:<24} resized max|diff| {rmax} ({rcount} bytes)  pixel_values max|diff| {pmax:.3e}  {}",
            case.name,
            if ok { "OK" } else { "NOT OK" }
        );
        if !ok {
            failures.push(case.name.clone());
        }
        count += 1;
    }
    assert!(count >= 40, "expected the PNG fixtures, found {count}");
    assert!(
        failures.is_empty(),
        "PNG cases differing from Pillow: {failures:?}"
    );
}

/// JPEG: our decoder (`clip_image::jpeg`, baseline and progressive) follows
/// libjpeg-turbo's islow IDCT, fancy upsampling and colour conversion, so the
/// decoded pixels, the resize and the pixel values are exact too. (jpeg-decoder,
/// kept only for arithmetic-coded and other rare files, differs by up to 3/255;
/// see docs/preprocessing.md.)
#[test]
fn jpeg_bit_exact_with_pillow() {
    let mut failures = Vec::new();
    let mut count = 0;
    for case in cases().iter().filter(|c| c.kind == "jpeg") {
        let path = fixture_dir().join(&case.file);
        let img = decode_file(&path, &case.preprocessor.decode).expect("decode");
        // Decoded pixels are stored for every case without EXIF rotation.
        let (dmax, dcount) = match case.decoded.as_deref() {
            Some(name) => u8_diff(&img.data, read_npy(name).as_u8()),
            None => (0, 0),
        };
        let (rmax, rcount, pmax) = run(case);
        let ok = dmax == 0 && rmax == 0 && pmax <= 1e-6;
        println!(
            "{:<26} decoded max|diff| {dmax} ({dcount} bytes)  resized max|diff| {rmax} ({rcount} bytes)  \
             pixel_values max|diff| {pmax:.3e}  {}",
            case.name,
            if ok { "OK" } else { "NOT OK" }
        );
        if !ok {
            failures.push(case.name.clone());
        }
        count += 1;
    }
    assert!(count >= 15, "expected the JPEG fixtures, found {count}");
    assert!(
        failures.is_empty(),
        "JPEG cases differing from Pillow: {failures:?}"
    );
}
