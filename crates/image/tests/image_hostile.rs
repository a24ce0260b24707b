//! Issue #21's hostile JPEGs, generated at test time by `tools/hostile_jpeg.py` (never
//! committed): the probe/decoder desync construction around huge frames is refused for the
//! real frame's size; around a real photo it decodes exactly as Pillow does; progressive
//! files past the scan limit are refused, a 400-scan file decodes exactly as Pillow does.
//!
//! Not here: time and peak memory of the refusals (the `clip` binary's
//! `tools/clip-cli/tests/hostile.rs` measures them in a child process).

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clip_image::{decode_bytes, DecodeOptions, Error, RgbImage};
use common::{fixture_dir, read_npy};

/// The folder the generator wrote, once per test binary.
fn hostile_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Rewritten by every run (2 MB), in the target folder rather than /tmp.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-jpeg-image");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/hostile_jpeg.py");
        let photo = fixture_dir().join("photo_2000x1500.jpg");
        let status = std::process::Command::new("python3")
            .arg(&script)
            .arg(&dir)
            .arg("--photo")
            .arg(&photo)
            .status()
            .expect("python3 runs tools/hostile_jpeg.py");
        assert!(status.success(), "tools/hostile_jpeg.py failed");
        dir
    })
}

fn decode(name: &str) -> Result<RgbImage, Error> {
    let bytes = std::fs::read(hostile_dir().join(name)).unwrap();
    decode_bytes(&bytes, Path::new(name), &DecodeOptions::default())
}

/// CRC-32 (ISO-HDLC, as Python's `zlib.crc32`).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[test]
fn desync_frames_are_refused_for_the_real_frame() {
    for (name, w, h) in [
        ("desync_65535_baseline.jpg", 65535, 65535),
        ("desync_65535_progressive.jpg", 65535, 65535),
        ("desync_65535_lossless.jpg", 65535, 65535),
        ("desync_65535_cmyk.jpg", 65535, 65535),
        ("desync_120mpx_grey.jpg", 12000, 10000),
    ] {
        match decode(name) {
            Err(Error::TooManyPixels {
                width,
                height,
                max_pixels,
                ..
            }) => {
                assert_eq!((width, height), (w, h), "{name}");
                assert_eq!(max_pixels, clip_image::DEFAULT_MAX_PIXELS);
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn desync_around_a_photo_decodes_as_pillow() {
    let img = decode("desync_photo.jpg").unwrap();
    assert_eq!((img.width, img.height), (2000, 1500));
    let want = std::fs::read_to_string(fixture_dir().join("photo_2000x1500.rows.txt")).unwrap();
    let want: Vec<u32> = want
        .lines()
        .map(|l| u32::from_str_radix(l, 16).unwrap())
        .collect();
    assert_eq!(want.len(), 1500);
    for (y, (row, &crc)) in img.data.chunks_exact(2000 * 3).zip(&want).enumerate() {
        assert_eq!(crc32(row), crc, "row {y} differs from Pillow's");
    }
}

#[test]
fn scans_past_the_limit_are_refused() {
    for name in ["scans_501.jpg", "scans_5000.jpg"] {
        match decode(name) {
            Err(e @ Error::LimitExceeded { what, max, .. }) => {
                assert_eq!((what, max), ("scans", 500), "{name}");
                assert!(e.to_string().contains("more than 500 scans"), "{e}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn four_hundred_scans_decode_as_pillow() {
    let img = decode("scans_400_small.jpg").unwrap();
    let want = read_npy("scans_400_small.npy");
    assert_eq!(want.shape, [img.height, img.width, 3]);
    assert_eq!(img.data, want.as_u8());
}

/// Issue #22: a 4x4 PNG with a 200 MB ICC profile (zeros: 200 kB compressed) decodes in a
/// child process whose peak memory stays under 64 MB: the profile, which Pillow's RGB
/// conversion does not use either, is never decompressed (it once took 710 MB).
#[test]
fn png_icc_bomb_decodes_in_bounded_memory() {
    const KEY: &str = "CLIP_IMAGE_RSS_CHILD";
    if let Ok(path) = std::env::var(KEY) {
        let img = clip_image::decode_file(Path::new(&path), &DecodeOptions::default());
        let (w, h) = img.map(|i| (i.width, i.height)).unwrap_or((0, 0));
        println!("RSS-CHILD {w}x{h} {}", common::peak_rss_kb());
        return;
    }
    let mut info = png::Info::with_size(4, 4);
    info.color_type = png::ColorType::Rgb;
    info.bit_depth = png::BitDepth::Eight;
    info.icc_profile = Some(vec![0u8; 200 << 20].into());
    let mut bytes = Vec::new();
    let enc = png::Encoder::with_info(&mut bytes, info).unwrap();
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(&[90u8; 48]).unwrap();
    writer.finish().unwrap();
    assert!(bytes.len() < 1 << 20, "{} bytes", bytes.len());
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("icc_bomb.png");
    std::fs::write(&path, &bytes).unwrap();
    let out = common::rerun_in_child(
        "png_icc_bomb_decodes_in_bounded_memory",
        &[(KEY, path.to_str().unwrap())],
    );
    let line = out
        .lines()
        .find_map(|l| l.split_once("RSS-CHILD ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no result from the child: {out}"));
    let (size, kb) = line.split_once(' ').unwrap();
    assert_eq!(size, "4x4");
    let kb: u64 = kb.parse().unwrap();
    assert!(kb < 64 << 10, "peak RSS {kb} kB");
}

/// Issue #22: four threads preprocessing four 2000 x 2000 progressive CMYK files of 147
/// bytes (each decode reserves about 80 MB of the budget and peaks at 67 MB alone) in a
/// child process with a 96 MB budget: the decodes take turns, so the peak stays under
/// 100 MB (68 MB measured; with no budget they overlap: 225-252 MB). The child runs with
/// `MALLOC_MMAP_THRESHOLD_` fixed, so that glibc returns freed buffers at once and the peak
/// measures what was live together: by default its per-thread arenas keep freed buffers
/// under 32 MB for reuse (195 MB here, with or without the budget; see
/// `docs/reliability.md`).
#[test]
fn parallel_decoding_stays_within_the_budget() {
    const KEY: &str = "CLIP_IMAGE_BUDGET_CHILD";
    if let Ok(path) = std::env::var(KEY) {
        clip_image::set_decode_memory_budget(96 << 20);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        let files = vec![PathBuf::from(path); 4];
        let pre = clip_image::Preprocessor::default();
        let pv = pool.install(|| pre.preprocess_batch(&files)).unwrap();
        assert_eq!(pv.shape, [4, 3, 224, 224]);
        println!("RSS-CHILD ok {}", common::peak_rss_kb());
        return;
    }
    let file = hostile_dir().join("sparse_cmyk_2000.jpg");
    let out = common::rerun_in_child(
        "parallel_decoding_stays_within_the_budget",
        &[
            (KEY, file.to_str().unwrap()),
            ("MALLOC_MMAP_THRESHOLD_", "131072"),
        ],
    );
    let kb: u64 = out
        .lines()
        .find_map(|l| {
            l.split_once("RSS-CHILD ok ")
                .map(|(_, r)| r.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no result from the child: {out}"));
    assert!(kb < 100 << 10, "peak RSS {kb} kB");
}
