//! Loading a model folder whose weights or config are wrong gives a typed error naming the
//! tensor (or file) and the expected and found values; nothing panics.

use clip::{ClipModel, Error};
use clip_tests::fixture;
use std::path::{Path, PathBuf};

/// A scratch copy of the tiny fixture folder with `model.safetensors` replaced by `bytes`.
fn folder_with(name: &str, bytes: &[u8], config: Option<&str>) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clip-errors-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = fixture("clip-tiny");
    let cfg = config
        .map(str::to_string)
        .unwrap_or_else(|| std::fs::read_to_string(src.join("config.json")).unwrap());
    std::fs::write(dir.join("config.json"), cfg).unwrap();
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
    dir
}

fn original() -> Vec<u8> {
    std::fs::read(fixture("clip-tiny").join("model.safetensors")).unwrap()
}

/// Splits a safetensors file into its JSON header and data.
fn split(bytes: &[u8]) -> (serde_json::Map<String, serde_json::Value>, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header.as_object().unwrap().clone(), bytes[8 + n..].to_vec())
}

fn join(header: &serde_json::Map<String, serde_json::Value>, data: &[u8]) -> Vec<u8> {
    let mut h = serde_json::Value::Object(header.clone())
        .to_string()
        .into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

fn load_err(dir: &Path) -> Error {
    match ClipModel::load(dir) {
        Ok(_) => panic!("{}: loaded, expected an error", dir.display()),
        Err(e) => {
            eprintln!("{}: {e}", dir.display());
            e
        }
    }
}

const KEY: &str = "vision_model.encoder.layers.0.mlp.fc1.weight";

#[test]
fn empty_truncated_and_garbage_files() {
    assert!(matches!(
        load_err(&folder_with("empty", &[], None)),
        Error::InvalidWeights { .. }
    ));
    let bytes = original();
    assert!(matches!(
        load_err(&folder_with("trunc", &bytes[..bytes.len() - 100], None)),
        Error::InvalidWeights { .. }
    ));
    assert!(matches!(
        load_err(&folder_with("trunc-header", &bytes[..20], None)),
        Error::InvalidWeights { .. }
    ));
    let mut huge = bytes.clone();
    huge[..8].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    assert!(matches!(
        load_err(&folder_with("huge-header", &huge, None)),
        Error::InvalidWeights { .. }
    ));
    let mut not_json = bytes.clone();
    not_json[8] = b'x';
    assert!(matches!(
        load_err(&folder_with("not-json", &not_json, None)),
        Error::InvalidWeights { .. }
    ));
}

/// The reason of an `InvalidWeights` error.
fn invalid_reason(e: Error) -> String {
    match e {
        Error::InvalidWeights { reason, .. } => reason,
        e => panic!("expected InvalidWeights, got {e:?}"),
    }
}

#[test]
fn header_length_beyond_the_file_or_near_2_64() {
    let bytes = original();
    // Larger than the file by a little, by a lot, and the largest values: refused from the
    // length field alone, before anything that size is allocated or read.
    for len in [
        bytes.len() as u64,
        bytes.len() as u64 * 1000,
        (1u64 << 63) + 5,
        u64::MAX - 7,
        u64::MAX,
    ] {
        let mut b = bytes.clone();
        b[..8].copy_from_slice(&len.to_le_bytes());
        let reason = invalid_reason(load_err(&folder_with("header-len", &b, None)));
        assert!(
            reason.contains("header length"),
            "length {len}: reason {reason:?}"
        );
    }
    // A header length that fits the file but whose header is cut short of its JSON.
    let reason = invalid_reason(load_err(&folder_with("header-cut", &bytes[..100], None)));
    assert!(
        reason.contains("header length exceeds the file"),
        "{reason}"
    );
}

#[test]
fn offsets_not_matching_shape_times_dtype() {
    // 4 bytes short of what the shape needs.
    let (mut h, data) = split(&original());
    let off = h[KEY]["data_offsets"].clone();
    let (a, b) = (off[0].as_u64().unwrap(), off[1].as_u64().unwrap());
    h.get_mut(KEY).unwrap()["data_offsets"] = serde_json::json!([a, b - 4]);
    let reason = invalid_reason(load_err(&folder_with("short", &join(&h, &data), None)));
    assert!(reason.contains("shape"), "{reason}");
    // The same bytes declared F16: half the elements the shape says.
    let (mut h, data) = split(&original());
    h.get_mut(KEY).unwrap()["dtype"] = serde_json::json!("F16");
    let reason = invalid_reason(load_err(&folder_with("f16-size", &join(&h, &data), None)));
    assert!(reason.contains("shape"), "{reason}");
    // A shape whose element count overflows.
    let (mut h, data) = split(&original());
    h.get_mut(KEY).unwrap()["shape"] = serde_json::json!([u64::MAX / 2, 4, 3]);
    let reason = invalid_reason(load_err(&folder_with("overflow", &join(&h, &data), None)));
    assert!(
        reason.contains("overflow") || reason.contains("shape"),
        "{reason}"
    );
}

/// NaN and Inf load (they are the model's values), and validation names the tensors.
#[test]
fn nan_and_inf_load_and_validation_names_them() {
    const OTHER: &str = "text_model.final_layer_norm.bias";
    let (h, mut data) = split(&original());
    let start = |k: &str| h[k]["data_offsets"][0].as_u64().unwrap() as usize;
    for (i, v) in [f32::NAN, f32::NAN, f32::INFINITY].into_iter().enumerate() {
        let at = start(KEY) + 4 * (3 + i);
        data[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    let at = start(OTHER);
    data[at..at + 4].copy_from_slice(&f32::NEG_INFINITY.to_le_bytes());
    let dir = folder_with("nan", &join(&h, &data), None);
    ClipModel::load(&dir).expect("NaN and Inf load without validation");
    let validate = clip::LoadOptions::new().validate(true);
    match ClipModel::load_with(&dir, &validate) {
        Err(e @ Error::NonFiniteWeights { .. }) => {
            let text = e.to_string();
            assert!(text.contains(KEY) && text.contains(OTHER), "{text}");
            assert!(text.contains("model.safetensors"), "{text}");
            let Error::NonFiniteWeights { tensors, .. } = e else {
                unreachable!()
            };
            assert_eq!(
                tensors,
                [
                    clip::NonFinite {
                        key: OTHER.into(),
                        nan: 0,
                        inf: 1
                    },
                    clip::NonFinite {
                        key: KEY.into(),
                        nan: 2,
                        inf: 1
                    },
                ]
            );
        }
        Err(e) => panic!("expected NonFiniteWeights, got {e:?}"),
        Ok(_) => panic!("validation passed NaN weights"),
    }
    // The fixture itself is finite, and validates.
    ClipModel::load_with(fixture("clip-tiny"), &validate).expect("finite weights validate");
    // f16 and bf16 bit patterns are recognised without conversion (extra tensors in the file).
    let (mut h, mut data) = split(&original());
    for (name, dtype, bits) in [
        ("h", "F16", [0x3c00u16, 0x7c00, 0xfe00, 0x7bff]),
        ("b", "BF16", [0x3f80u16, 0xff80, 0x7fc1, 0x7f7f]),
    ] {
        let s = data.len();
        bits.iter()
            .for_each(|b| data.extend_from_slice(&b.to_le_bytes()));
        h.insert(
            name.into(),
            serde_json::json!({"dtype": dtype, "shape": [4], "data_offsets": [s, s + 8]}),
        );
    }
    let dir = folder_with("nan16", &join(&h, &data), None);
    match ClipModel::load_with(&dir, &validate) {
        Err(Error::NonFiniteWeights { tensors, .. }) => {
            let got: Vec<(String, usize, usize)> =
                tensors.into_iter().map(|n| (n.key, n.nan, n.inf)).collect();
            assert_eq!(got, [("b".into(), 1, 1), ("h".into(), 1, 1)]);
        }
        other => panic!("expected NonFiniteWeights, got {other:?}"),
    }
}

#[test]
fn offsets_out_of_range_or_overlapping() {
    let (mut h, data) = split(&original());
    let off = h[KEY]["data_offsets"].clone();
    h.get_mut(KEY).unwrap()["data_offsets"] =
        serde_json::json!([0, off[1].as_u64().unwrap() - off[0].as_u64().unwrap()]);
    assert!(matches!(
        load_err(&folder_with("overlap", &join(&h, &data), None)),
        Error::InvalidWeights { .. }
    ));
    let (mut h, data) = split(&original());
    h.get_mut(KEY).unwrap()["data_offsets"] = serde_json::json!([data.len() + 8, data.len() + 16]);
    assert!(matches!(
        load_err(&folder_with("range", &join(&h, &data), None)),
        Error::InvalidWeights { .. }
    ));
}

#[test]
fn missing_wrong_shape_and_wrong_dtype_name_the_tensor() {
    // Missing: rename the key.
    let (mut h, data) = split(&original());
    let v = h.remove(KEY).unwrap();
    h.insert("something.else".into(), v);
    match load_err(&folder_with("missing", &join(&h, &data), None)) {
        Error::MissingTensor { key } => assert_eq!(key, KEY),
        e => panic!("expected MissingTensor, got {e:?}"),
    }
    // Wrong shape: same bytes, transposed shape.
    let (mut h, data) = split(&original());
    let shape: Vec<u64> = h[KEY]["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    h.get_mut(KEY).unwrap()["shape"] = serde_json::json!([shape[1], shape[0]]);
    match load_err(&folder_with("shape", &join(&h, &data), None)) {
        Error::WrongShape {
            key,
            expected,
            found,
        } => {
            assert_eq!(key, KEY);
            assert_eq!(expected, vec![shape[0] as usize, shape[1] as usize]);
            assert_eq!(found, vec![shape[1] as usize, shape[0] as usize]);
        }
        e => panic!("expected WrongShape, got {e:?}"),
    }
    // Wrong dtype: the same bytes declared as I32.
    let (mut h, data) = split(&original());
    h.get_mut(KEY).unwrap()["dtype"] = serde_json::json!("I32");
    match load_err(&folder_with("dtype", &join(&h, &data), None)) {
        Error::WrongDType { key, found, .. } => {
            assert_eq!(key, KEY);
            assert_eq!(found, "I32");
        }
        e => panic!("expected WrongDType, got {e:?}"),
    }
}

#[test]
fn unknown_layout_garbage_and_inconsistent_config() {
    let (h, data) = split(&original());
    let renamed: serde_json::Map<_, _> = h
        .into_iter()
        .map(|(k, v)| {
            if k == "__metadata__" {
                (k, v)
            } else {
                (format!("model.{k}"), v)
            }
        })
        .collect();
    assert!(matches!(
        load_err(&folder_with("layout", &join(&renamed, &data), None)),
        Error::UnknownLayout { .. }
    ));
    assert!(matches!(
        load_err(&folder_with(
            "garbage-config",
            &original(),
            Some("{not json")
        )),
        Error::InvalidConfig { .. }
    ));
    let cfg = std::fs::read_to_string(fixture("clip-tiny").join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    v["vision_config"]["num_hidden_layers"] = serde_json::json!(5);
    match load_err(&folder_with(
        "inconsistent",
        &original(),
        Some(&v.to_string()),
    )) {
        Error::MissingTensor { key } => {
            assert!(key.starts_with("vision_model.encoder.layers.1."), "{key}")
        }
        e => panic!("expected MissingTensor, got {e:?}"),
    }
    v["vision_config"]["num_hidden_layers"] = serde_json::json!(1);
    v["vision_config"]["intermediate_size"] = serde_json::json!(100);
    match load_err(&folder_with(
        "inconsistent2",
        &original(),
        Some(&v.to_string()),
    )) {
        Error::WrongShape { key, expected, .. } => {
            assert_eq!(key, "vision_model.encoder.layers.0.mlp.fc1.weight");
            assert_eq!(expected[0], 100);
        }
        e => panic!("expected WrongShape, got {e:?}"),
    }
    assert!(matches!(
        ClipModel::load(std::env::temp_dir().join("no-such-clip-folder")),
        Err(Error::MissingFile { .. })
    ));
}

#[test]
fn extra_tensors_are_accepted_and_listed_unless_strict() {
    let (mut h, mut data) = split(&original());
    let start = data.len();
    data.extend_from_slice(&[0u8; 16]);
    h.insert(
        "extra.tensor".into(),
        serde_json::json!({"dtype": "F32", "shape": [4], "data_offsets": [start, start + 16]}),
    );
    let dir = folder_with("extra", &join(&h, &data), None);
    let model = ClipModel::load(&dir).unwrap();
    assert_eq!(model.unused_tensors(), ["extra.tensor".to_string()]);
    let strict = clip::LoadOptions::new().strict(true);
    assert!(matches!(
        ClipModel::load_with(&dir, &strict),
        Err(Error::InvalidWeights { .. })
    ));
}

#[test]
fn model_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<ClipModel>();
}

/// A tensor name from the file with a newline (found by AFL++) still gives a one-line error:
/// control characters in messages are escaped.
#[test]
fn control_characters_in_tensor_names_are_escaped() {
    let (mut header, data) = split(&original());
    header.insert(
        "bad\nname\r".to_string(),
        serde_json::json!({"dtype": "F32", "shape": [1], "data_offsets": [0, 99_999_999]}),
    );
    let dir = folder_with("control-chars", &join(&header, &data), None);
    let text = load_err(&dir).to_string();
    assert!(!text.chars().any(char::is_control), "{text:?}");
    assert!(text.contains("bad\\nname\\r"), "{text:?}");
}
