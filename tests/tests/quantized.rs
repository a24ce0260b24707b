//! Pre-quantised model folders (`clip::quantize_model`, `clip quantize`): they load in int8 by
//! default to bitwise the model an int8 load of the source gives (HF and OpenAI names, f32
//! and bf16 sources), dequantise when loaded in f32, and a malformed quantised file (scales
//! missing, of the wrong shape or dtype, NaN, infinite, zero or negative; I8 without the
//! scheme or under an unknown one; I8 where a float is needed) is a typed error naming the
//! tensor; nothing panics.

use clip::{ClipModel, Error, LoadOptions, PixelValues, Precision};
use clip_tests::{fixture, Reference};
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clip-quant-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// clip-tiny's OpenAI-named weights with its config.json beside them (shapes alone are not
/// one of OpenAI's releases, so the config is needed).
fn openai_with_config() -> PathBuf {
    let dir = scratch("openai-src");
    std::fs::create_dir_all(&dir).unwrap();
    let src = fixture("clip-tiny");
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    std::fs::copy(
        src.join("openai").join("model.safetensors"),
        dir.join("model.safetensors"),
    )
    .unwrap();
    dir
}

fn embeddings(dir: &Path, p: Option<Precision>) -> (Vec<f32>, Vec<f32>) {
    let mut opts = LoadOptions::new().threads(2);
    if let Some(p) = p {
        opts = opts.precision(p);
    }
    let m = ClipModel::load_with(dir, &opts).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let r = Reference::load(&fixture("clip-tiny2").join("reference.safetensors"));
    let (shape, data) = r.get("pixel_values");
    let s = m.config().vision.image_size;
    let n = shape[0];
    // The fixture's own pixels when sizes match, else a pattern of the model's size.
    let px = if shape[2] == s {
        data.to_vec()
    } else {
        (0..n * 3 * s * s)
            .map(|i| ((i % 97) as f32 / 48.0) - 1.0)
            .collect()
    };
    let img = m
        .embed_pixels(&PixelValues {
            data: px,
            shape: [n, 3, s, s],
        })
        .unwrap();
    let ids: Vec<Vec<u32>> = vec![vec![
        m.config().text.vocab_size as u32 - 2,
        5,
        7,
        9,
        m.config().text.vocab_size as u32 - 1,
    ]];
    let seqs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let txt = m.embed_token_ids(&seqs).unwrap();
    if p.is_none() {
        assert_eq!(
            m.precision(),
            Precision::Int8,
            "a quantised folder loads in int8"
        );
    }
    (img.into_vec(), txt.into_vec())
}

#[test]
fn quantised_folders_load_to_the_int8_model_of_their_source() {
    for (name, src) in [
        ("tiny", fixture("clip-tiny")),
        ("tiny-openai", openai_with_config()),
        ("tiny2", fixture("clip-tiny2")),
        ("tiny2-bf16", fixture("clip-tiny2-bf16")),
    ] {
        let out = scratch(name);
        let report = clip::quantize_model(&src, &out).unwrap();
        assert!(
            report.quantized > 0 && report.bytes_out < report.bytes_in,
            "{name}: {report:?}"
        );
        let want = embeddings(&src, Some(Precision::Int8));
        assert_eq!(
            embeddings(&out, None),
            want,
            "{name}: quantised file != int8 load"
        );
        // In f32 the weights are dequantised: close to, not equal to, the int8 result.
        let (fi, ft) = embeddings(&out, Some(Precision::F32));
        let cos = clip_tests::cosine(&fi, &want.0).min(clip_tests::cosine(&ft, &want.1));
        assert!(cos > 0.99, "{name}: dequantised cosine {cos}");
        // Quantising twice is refused.
        assert!(matches!(
            clip::quantize_model(&out, scratch(&format!("{name}-again"))),
            Err(Error::InvalidArgument { .. })
        ));
        let _ = std::fs::remove_dir_all(&out);
    }
}

/// The quantised tiny fixture's bytes, split into header and data.
fn quantised_tiny() -> (serde_json::Map<String, serde_json::Value>, Vec<u8>) {
    let out = scratch("tiny-bytes");
    clip::quantize_model(fixture("clip-tiny"), &out).unwrap();
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header.as_object().unwrap().clone(), bytes[8 + n..].to_vec())
}

fn load_bytes(
    name: &str,
    header: &serde_json::Map<String, serde_json::Value>,
    data: &[u8],
) -> Error {
    let mut h = serde_json::Value::Object(header.clone())
        .to_string()
        .into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&h);
    bytes.extend_from_slice(data);
    let dir = scratch(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixture("clip-tiny").join("config.json"),
        dir.join("config.json"),
    )
    .unwrap();
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
    let r = ClipModel::load(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    match r {
        Ok(_) => panic!("{name}: loaded, expected an error"),
        Err(e) => {
            let msg = e.to_string();
            eprintln!("{name}: {msg}");
            assert!(!msg.contains('\n'), "{name}: one line");
            e
        }
    }
}

const W: &str = "vision_model.encoder.layers.0.mlp.fc1.weight";

/// Points the scale of `W` at 4 bytes of the data holding `value` (overwritten in place).
fn set_scale(h: &mut serde_json::Map<String, serde_json::Value>, data: &mut [u8], value: f32) {
    let start = h[&format!("{W}_scale")]["data_offsets"][0]
        .as_u64()
        .unwrap() as usize;
    data[start + 8..start + 12].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn malformed_quantised_files_are_typed_errors() {
    let scale = format!("{W}_scale");
    // Missing scales (renamed, so the data stays covered).
    let (mut h, d) = quantised_tiny();
    let v = h.remove(&scale).unwrap();
    h.insert(format!("{W}_scales"), v);
    match load_bytes("missing", &h, &d) {
        Error::MissingTensor { key } => assert_eq!(key, scale),
        e => panic!("missing scale: {e:?}"),
    }
    // Scales of the wrong shape (the same bytes seen as [2, out/2]).
    let (mut h, d) = quantised_tiny();
    let out = h[&scale]["shape"][0].as_u64().unwrap();
    h.get_mut(&scale).unwrap()["shape"] = serde_json::json!([2, out / 2]);
    assert!(matches!(load_bytes("shape", &h, &d), Error::WrongShape { key, .. } if key == scale));
    // Scales of another dtype (I32: the same bytes).
    let (mut h, d) = quantised_tiny();
    h.get_mut(&scale).unwrap()["dtype"] = serde_json::json!("I32");
    assert!(matches!(load_bytes("dtype", &h, &d), Error::WrongDType { key, .. } if key == scale));
    // NaN, infinite, zero and negative scales.
    for (name, v) in [
        ("nan", f32::NAN),
        ("inf", f32::INFINITY),
        ("zero", 0.0),
        ("negative", -0.5),
    ] {
        let (mut h, mut d) = quantised_tiny();
        set_scale(&mut h, &mut d, v);
        match load_bytes(name, &h, &d) {
            Error::InvalidWeights { reason, .. } => {
                assert!(
                    reason.contains(&scale) && reason.contains("[2]"),
                    "{reason}"
                )
            }
            e => panic!("{name} scale: {e:?}"),
        }
    }
    // I8 tensors without the scheme, or under an unknown one.
    let (mut h, d) = quantised_tiny();
    h.remove("__metadata__");
    assert!(matches!(
        load_bytes("no-scheme", &h, &d),
        Error::InvalidWeights { .. }
    ));
    let (mut h, d) = quantised_tiny();
    h.insert(
        "__metadata__".into(),
        serde_json::json!({"quantization": "gptq-4bit"}),
    );
    assert!(matches!(
        load_bytes("unknown-scheme", &h, &d),
        Error::InvalidWeights { .. }
    ));
    // I8 where a float is needed: a layer norm's weight as 64 i8 (its other 192 bytes
    // become an unused tensor, so the file stays valid).
    let (mut h, d) = quantised_tiny();
    let ln = "vision_model.encoder.layers.0.layer_norm1.weight";
    let n = h[ln]["shape"][0].as_u64().unwrap();
    let start = h[ln]["data_offsets"][0].as_u64().unwrap();
    h.insert(
        ln.into(),
        serde_json::json!({"dtype": "I8", "shape": [n], "data_offsets": [start, start + n]}),
    );
    h.insert(
        "unused.padding".into(),
        serde_json::json!({"dtype": "U8", "shape": [3 * n], "data_offsets": [start + n, start + 4 * n]}),
    );
    match load_bytes("i8-layernorm", &h, &d) {
        Error::WrongDType { key, found, .. } => {
            assert_eq!((key.as_str(), found.as_str()), (ln, "I8"))
        }
        e => panic!("I8 layer norm: {e:?}"),
    }
}
