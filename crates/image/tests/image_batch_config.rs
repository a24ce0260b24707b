//! Batches and settings: `[N, 3, H, W]` equals the single-image results stacked,
//! and `preprocessor_config.json` in both HF formats (or none) gives the right
//! settings.

mod common;

use std::path::Path;

use clip_image::{PreprocessConfig, Preprocessor, ResizeTarget};
use common::fixture_dir;

#[test]
fn batch_equals_single_images() {
    let pre = Preprocessor::default();
    let names = [
        "jpeg_420.jpg",
        "rgba8.png",
        "gray16.png",
        "jpeg_progressive.jpg",
    ];
    let paths: Vec<_> = names.iter().map(|n| fixture_dir().join(n)).collect();
    let batch = pre.preprocess_batch(&paths).expect("batch");
    assert_eq!(batch.shape, [4, 3, 224, 224]);
    let per = 3 * 224 * 224;
    for (i, p) in paths.iter().enumerate() {
        let one = pre.preprocess_file(p).expect("single");
        assert_eq!(one.shape, [1, 3, 224, 224]);
        assert_eq!(
            &batch.data[i * per..(i + 1) * per],
            &one.data[..],
            "{}",
            names[i]
        );
    }
    let empty: Vec<std::path::PathBuf> = Vec::new();
    assert_eq!(pre.preprocess_batch(&empty).expect("empty").shape[0], 0);
}

#[test]
fn batch_reports_the_failing_file() {
    let pre = Preprocessor::default();
    let paths = [
        fixture_dir().join("rgb8.png"),
        fixture_dir().join("missing.png"),
    ];
    let e = pre.preprocess_batch(&paths).unwrap_err();
    assert!(e.to_string().contains("missing.png"), "{e}");
}

#[test]
fn old_and_new_config_formats() {
    let old = br#"{"crop_size": 224, "do_center_crop": true, "do_normalize": true, "do_resize": true,
        "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224}"#;
    let new = br#"{"crop_size": {"height": 224, "width": 224}, "do_convert_rgb": true, "do_rescale": true,
        "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 224}, "resample": 3,
        "image_processor_type": "CLIPImageProcessor"}"#;
    let a = PreprocessConfig::from_json(old, Path::new("old.json")).expect("old");
    let b = PreprocessConfig::from_json(new, Path::new("new.json")).expect("new");
    assert_eq!(a, PreprocessConfig::default());
    assert_eq!(b, PreprocessConfig::default());
    let custom = br#"{"size": {"height": 336, "width": 300}, "crop_size": 288, "image_mean": 0.5, "image_std": [0.5, 0.25, 0.125]}"#;
    let c = PreprocessConfig::from_json(custom, Path::new("c.json")).expect("custom");
    assert_eq!(
        c.size,
        ResizeTarget::Exact {
            height: 336,
            width: 300
        }
    );
    assert_eq!((c.crop_height, c.crop_width), (288, 288));
    assert_eq!(c.image_mean, [0.5; 3]);
    assert_eq!(c.image_std, [0.5, 0.25, 0.125]);
}

#[test]
fn model_dir_without_config_uses_clip_defaults() {
    let dir = std::env::temp_dir().join(format!("clip-image-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    assert_eq!(
        PreprocessConfig::from_model_dir(&dir).expect("defaults"),
        PreprocessConfig::default()
    );
    std::fs::write(
        dir.join("preprocessor_config.json"),
        br#"{"size": 64, "crop_size": 48}"#,
    )
    .expect("write");
    let cfg = PreprocessConfig::from_model_dir(&dir).expect("config");
    assert_eq!(cfg.size, ResizeTarget::ShortestEdge(64));
    assert_eq!((cfg.crop_height, cfg.crop_width), (48, 48));
    std::fs::write(dir.join("preprocessor_config.json"), b"{not json").expect("write");
    assert!(PreprocessConfig::from_model_dir(&dir).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
