//! One test per error case: every bad input gives a typed error naming the file,
//! and no input (truncated at any length, bytes flipped) panics.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use clip_image::Error;
use clip_image::{decode_bytes, decode_file, DecodeOptions, PreprocessConfig, Preprocessor};
use common::fixture_dir;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(name)).expect("fixture")
}

fn decode(bytes: &[u8]) -> Result<clip_image::RgbImage, Error> {
    decode_bytes(bytes, Path::new("test-input"), &DecodeOptions::default())
}

/// The error names the file in its Display text.
fn assert_names_file(e: &Error) {
    assert!(e.to_string().starts_with("test-input: "), "{e}");
}

#[test]
fn empty_file() {
    let e = decode(&[]).unwrap_err();
    assert!(matches!(e, Error::EmptyImage { .. }), "{e:?}");
    assert_names_file(&e);
}

#[test]
fn missing_file_is_io_error() {
    let path = PathBuf::from("/nonexistent/clip-test.png");
    let e = decode_file(&path, &DecodeOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("clip-test.png"));
}

#[test]
fn gif_is_unsupported() {
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
    let e = decode(gif).unwrap_err();
    match &e {
        Error::UnsupportedFormat { format, .. } => assert_eq!(format, "GIF"),
        other => panic!("{other:?}"),
    }
    assert_names_file(&e);
    let e = decode(b"hello world").unwrap_err();
    assert!(matches!(e, Error::UnsupportedFormat { .. }), "{e:?}");
}

#[test]
fn truncated_png() {
    let png = fixture("rgb8.png");
    for cut in [20, 40, png.len() / 2, png.len() - 13] {
        let e = decode(&png[..cut]).unwrap_err();
        assert!(
            matches!(e, Error::TruncatedImage { .. }),
            "cut {cut}: {e:?}"
        );
        assert_names_file(&e);
    }
}

#[test]
fn truncated_jpeg() {
    let jpg = fixture("jpeg_420.jpg");
    for cut in [3, 100, jpg.len() / 2] {
        let e = decode(&jpg[..cut]).unwrap_err();
        assert!(
            matches!(e, Error::TruncatedImage { .. } | Error::CorruptImage { .. }),
            "cut {cut}: {e:?}"
        );
        assert_names_file(&e);
    }
    // Only the end-of-image marker missing: Pillow says "image file is truncated".
    let e = decode(&jpg[..jpg.len() - 2]).unwrap_err();
    assert!(matches!(e, Error::TruncatedImage { .. }), "{e:?}");
}

#[test]
fn corrupt_png_checksum() {
    let mut png = fixture("rgb8.png");
    let idat = png.windows(4).position(|w| w == b"IDAT").expect("IDAT");
    png[idat + 10] ^= 0x55;
    let e = decode(&png).unwrap_err();
    assert!(matches!(e, Error::CorruptImage { .. }), "{e:?}");
    assert_names_file(&e);
}

#[test]
fn corrupt_jpeg_markers() {
    let e = decode(&[0xFF, 0xD8, 0x12, 0x34, 0x56]).unwrap_err();
    assert!(matches!(e, Error::CorruptImage { .. }), "{e:?}");
    let mut jpg = fixture("jpeg_444.jpg");
    let sos = jpg.windows(2).position(|w| w == [0xFF, 0xDA]).expect("SOS");
    jpg[sos + 4] = 0xEE; // nonsense component count in the scan header
    let e = decode(&jpg).unwrap_err();
    assert!(matches!(e, Error::CorruptImage { .. }), "{e:?}");
}

#[test]
fn zero_size_png_and_jpeg() {
    let mut png = fixture("rgb8.png");
    png[16..20].copy_from_slice(&0u32.to_be_bytes());
    let e = decode(&png).unwrap_err();
    assert!(matches!(e, Error::ZeroSizedImage { width: 0, .. }), "{e:?}");
    let mut jpg = fixture("jpeg_444.jpg");
    let sof = jpg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("SOF0");
    jpg[sof + 5..sof + 7].copy_from_slice(&[0, 0]); // height 0
    let e = decode(&jpg).unwrap_err();
    assert!(
        matches!(e, Error::ZeroSizedImage { height: 0, .. }),
        "{e:?}"
    );
    assert_names_file(&e);
}

#[test]
fn too_many_pixels_checked_from_header() {
    // A 40000 x 40000 header on a tiny file: rejected before any allocation.
    let mut png = fixture("rgb8.png");
    png[16..20].copy_from_slice(&40_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&40_000u32.to_be_bytes());
    let e = decode(&png).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooManyPixels {
                max_pixels: 100_000_000,
                ..
            }
        ),
        "{e:?}"
    );
    // The limit is configurable.
    let small = DecodeOptions {
        max_pixels: 100,
        ..DecodeOptions::default()
    };
    let e = decode_bytes(&fixture("jpeg_444.jpg"), Path::new("test-input"), &small).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooManyPixels {
                width: 96,
                height: 64,
                ..
            }
        ),
        "{e:?}"
    );
    assert_names_file(&e);
}

#[test]
fn invalid_config_and_arguments() {
    let e = PreprocessConfig::from_json(b"{\"size\": -3}", Path::new("cfg.json")).unwrap_err();
    assert!(
        matches!(e, Error::InvalidPreprocessorConfig { .. }),
        "{e:?}"
    );
    let e = PreprocessConfig::from_json(b"{\"resample\": 1}", Path::new("cfg.json")).unwrap_err();
    assert!(e.to_string().contains("bicubic"), "{e}");
    let p = Preprocessor {
        config: PreprocessConfig {
            crop_height: 0,
            ..PreprocessConfig::default()
        },
        ..Preprocessor::default()
    };
    let img = clip_image::RgbImage::new(1, 1, vec![0, 0, 0]).expect("1x1");
    assert!(matches!(
        p.preprocess_rgb(&img),
        Err(Error::InvalidArgument { .. })
    ));
}

/// Every prefix and a sweep of single-byte corruptions: errors, never panics.
/// The decoders run under `catch_unwind` (a panic would become `CorruptImage`),
/// so a panic hook counts panics to prove none happens at all.
#[test]
fn no_panic_on_damaged_inputs() {
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {
        PANICS.fetch_add(1, Ordering::SeqCst);
    }));
    let files = [
        "palette4_trns.png",
        "rgb16_trns.png",
        "rgb8_interlaced.png",
        "jpeg_420.jpg",
        "jpeg_progressive.jpg",
        "jpeg_progressive_restart.jpg",
        "jpeg_restart.jpg",
        "jpeg_cmyk.jpg",
        "jpeg_tiny_3x3_420.jpg",
    ];
    for name in files {
        let good = fixture(name);
        for cut in 0..good.len() {
            let _ = decode(&good[..cut]);
        }
        let step = if good.len() < 2000 { 1 } else { 5 };
        for i in (0..good.len()).step_by(step) {
            for delta in [0x01, 0x5A, 0x80] {
                let mut bad = good.clone();
                bad[i] = bad[i].wrapping_add(delta);
                let _ = decode(&bad);
            }
        }
    }
    std::panic::set_hook(previous);
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "a decoder panicked on damaged input"
    );
}

/// A PNG of `w x h` RGB pixels, encoded in memory.
fn png_of(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let data: Vec<u8> = (0..w * h * 3).map(|i| (i * 31 % 251) as u8).collect();
    enc.write_header()
        .expect("header")
        .write_image_data(&data)
        .expect("data");
    out
}

/// 100000 x 100000 declared by a PNG header (and the JPEG maximum, 65535 x 65535, as
/// JPEG sizes are 16-bit): refused from the header, before the decoder allocates.
#[test]
fn huge_declared_sizes_refused_from_the_header() {
    let mut png = png_of(2, 2);
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let e = decode(&png).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooManyPixels {
                width: 100_000,
                height: 100_000,
                ..
            }
        ),
        "{e:?}"
    );
    assert_names_file(&e);
    // The same through preprocessing.
    let e = Preprocessor::default()
        .preprocess_bytes(&png, Path::new("test-input"))
        .unwrap_err();
    assert!(matches!(e, Error::TooManyPixels { .. }), "{e:?}");
    let mut jpg = fixture("jpeg_444.jpg");
    let sof = jpg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("SOF0");
    jpg[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    let e = decode(&jpg).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooManyPixels {
                width: 65535,
                height: 65535,
                ..
            }
        ),
        "{e:?}"
    );
    assert_names_file(&e);
}

#[test]
fn text_named_jpg_is_unsupported_and_named() {
    let path = std::env::temp_dir().join(format!("clip-text-{}.jpg", std::process::id()));
    std::fs::write(&path, "this is a text file, not a JPEG\n").unwrap();
    let e = decode_file(&path, &DecodeOptions::default()).unwrap_err();
    assert!(matches!(e, Error::UnsupportedFormat { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with(&path.display().to_string()),
        "{e}"
    );
    std::fs::remove_file(&path).unwrap();
}

/// Bytes that are not markers right after the start-of-image marker.
#[test]
fn garbage_after_jpeg_soi() {
    let garbage: [&[u8]; 5] = [
        b"\xFF\xD8hello, world",
        b"\xFF\xD8\x00\x00\x00\x00\x00\x00\x00\x00",
        b"\xFF\xD8\xFF",
        b"\xFF\xD8\xFF\xFF\xFF\xFF\xFF\xFF",
        b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\x17\x42\x99",
    ];
    for g in garbage {
        let e = decode(g).unwrap_err();
        assert!(
            matches!(e, Error::CorruptImage { .. } | Error::TruncatedImage { .. }),
            "{g:?}: {e:?}"
        );
        assert_names_file(&e);
    }
    // Garbage after SOI followed by a whole valid file is still refused, not searched.
    let mut jpg = b"\xFF\xD8garbage".to_vec();
    jpg.extend_from_slice(&fixture("jpeg_444.jpg"));
    let e = decode(&jpg).unwrap_err();
    assert!(matches!(e, Error::CorruptImage { .. }), "{e:?}");
}

/// Extreme aspect ratios and a single pixel decode and preprocess to finite 224 x 224.
#[test]
fn one_pixel_and_thin_images_are_accepted() {
    let pre = Preprocessor::default();
    for (w, h) in [(1, 1), (5000, 1), (1, 5000)] {
        let png = png_of(w, h);
        let img = decode(&png).unwrap_or_else(|e| panic!("{w}x{h}: {e}"));
        assert_eq!((img.width, img.height), (w as usize, h as usize));
        let pv = pre
            .preprocess_bytes(&png, Path::new("test-input"))
            .unwrap_or_else(|e| panic!("{w}x{h}: {e}"));
        assert_eq!(pv.shape, [1, 3, 224, 224], "{w}x{h}");
        assert!(pv.data.iter().all(|v| v.is_finite()), "{w}x{h}");
    }
    let pv = pre
        .preprocess_bytes(&fixture("jpeg_1x1.jpg"), Path::new("test-input"))
        .expect("1x1 JPEG");
    assert_eq!(pv.shape, [1, 3, 224, 224]);
}

/// Output sizes come from a config file and the aspect ratio: they are bounded by the pixel
/// limit, and a crop of a huge resize costs the crop (no table over the whole resize).
#[test]
fn preprocessing_output_is_bounded() {
    let thin = clip_image::RgbImage::new(5000, 1, vec![128; 5000 * 3]).expect("5000x1");
    // Without center crop, 5000x1 resizes to 1,120,000 x 224: over 100 M pixels, refused.
    let no_crop = Preprocessor {
        config: PreprocessConfig {
            do_center_crop: false,
            ..PreprocessConfig::default()
        },
        ..Preprocessor::default()
    };
    let e = no_crop.preprocess_rgb(&thin).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument { reason } if reason.contains("1120000x224")),
        "{e:?}"
    );
    assert!(matches!(
        no_crop.resize(&thin),
        Err(Error::InvalidArgument { .. })
    ));
    // A hostile preprocessor_config.json: huge crop, refused; huge resize with a normal
    // crop, computed through the window (2^40 columns would not fit in memory).
    let cfg = PreprocessConfig::from_json(
        br#"{"crop_size": 1000000000, "size": {"shortest_edge": 224}}"#,
        Path::new("preprocessor_config.json"),
    )
    .expect("parses");
    let huge_crop = Preprocessor {
        config: cfg,
        ..Preprocessor::default()
    };
    assert!(matches!(
        huge_crop.preprocess_rgb(&thin),
        Err(Error::InvalidArgument { .. })
    ));
    let huge_resize = Preprocessor {
        config: PreprocessConfig {
            size: clip_image::ResizeTarget::ShortestEdge(1 << 28),
            ..PreprocessConfig::default()
        },
        ..Preprocessor::default()
    };
    let pv = huge_resize
        .preprocess_rgb(&thin)
        .expect("a window of a huge resize");
    assert_eq!(pv.shape, [1, 3, 224, 224]);
}

/// A device or a pipe is not read without end, and a file larger than any image within the
/// pixel limit (a 2 GB sparse file) is refused from its size, before it is read (issue #22).
#[test]
fn non_regular_and_oversized_files_are_refused_before_reading() {
    let opts = DecodeOptions::default();
    let e = decode_file(Path::new("/dev/zero"), &opts).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    let sparse = std::env::temp_dir().join(format!("clip-sparse-{}.jpg", std::process::id()));
    let f = std::fs::File::create(&sparse).unwrap();
    f.set_len(2 << 30).unwrap();
    let t = std::time::Instant::now();
    let e = decode_file(&sparse, &opts).unwrap_err();
    assert!(matches!(e, Error::FileTooLarge { .. }), "{e}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(1),
        "read before refusing"
    );
    let pre = Preprocessor::default();
    assert!(matches!(
        pre.preprocess_file(&sparse),
        Err(Error::FileTooLarge { .. })
    ));
    let _ = std::fs::remove_file(&sparse);
}
