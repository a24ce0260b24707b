//! Decoding PNG (`png` crate) and JPEG (our `jpeg` module, libjpeg-turbo-exact;
//! `jpeg-decoder` only for arithmetic-coded and other rare files) into
//! Pillow-equivalent 8-bit RGB, with typed errors and the pixel limit checked by
//! each decoder where it allocates (the probe's check comes first and only adds to it).
//!
//! Not here: colour conversion (`convert.rs`), EXIF orientation (`exif.rs`).

use std::io::Cursor;
use std::panic::AssertUnwindSafe;
use std::path::Path;

use super::budget::{self, Reservation};
use super::convert::{self, PngColor, PngLayout};
use super::jpeg::JpegErr;
use super::probe::{png_exif, probe, Header, ImageFormat};
use super::{exif, DecodeOptions, RgbImage};
use crate::{Error, Result};

/// Reads and decodes an image file to RGB.
pub fn decode_file(path: &Path, opts: &DecodeOptions) -> Result<RgbImage> {
    let bytes = read_input(path, opts)?;
    decode_bytes(&bytes, path, opts)
}

/// The bytes of an image file: a regular file (a device or a pipe could be read without end)
/// of at most the largest encoding `opts.max_pixels` pixels can need (16-bit RGBA, raw: 8
/// bytes a pixel, plus 1 MiB), refused from its size before anything is read.
pub(crate) fn read_input(path: &Path, opts: &DecodeOptions) -> Result<Vec<u8>> {
    use std::io::Read;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(io(std::io::Error::other(
            "not a regular file (a folder, device, pipe or socket)",
        )));
    }
    let max = opts.max_pixels.saturating_mul(8).saturating_add(1 << 20);
    if meta.len() > max {
        return Err(Error::FileTooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            max,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow while read: never past the bound.
    file.take(max).read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// Decodes an encoded image held in memory; `name` is used in error messages. Waits for
/// room in the process's decoding memory budget first (see [`crate::set_decode_memory_budget`]).
pub fn decode_bytes(bytes: &[u8], name: &Path, opts: &DecodeOptions) -> Result<RgbImage> {
    decode_reserved(bytes, name, opts).map(|(image, _reservation)| image)
}

/// [`decode_bytes`], returning the budget reservation with the image, for a caller that
/// goes on working on it (preprocessing) within the same reservation.
pub(crate) fn decode_reserved(
    bytes: &[u8],
    name: &Path,
    opts: &DecodeOptions,
) -> Result<(RgbImage, Reservation<'static>)> {
    let header = probe(bytes, name, opts.max_pixels)?;
    // The input is counted too: it stays allocated while this decode runs.
    let reservation = budget::reserve(header.memory.saturating_add(bytes.len() as u64));
    // Safety net: a panic inside a decoder crate on hostile input becomes a
    // typed error instead of taking the caller down.
    let decoded = std::panic::catch_unwind(AssertUnwindSafe(|| match header.format {
        ImageFormat::Png => decode_png(bytes, name, opts, &header),
        ImageFormat::Jpeg => decode_jpeg(bytes, name, opts.max_pixels),
    }))
    .unwrap_or_else(|_| {
        Err(Error::CorruptImage {
            path: name.to_path_buf(),
            format: header.format.name(),
            reason: "the decoder panicked on this input".to_string(),
        })
    });
    let (image, orientation) = decoded?;
    if opts.apply_exif_orientation {
        if let Some(o) = orientation {
            return Ok((exif::apply_orientation(image, o), reservation));
        }
    }
    Ok((image, reservation))
}

fn io_error(path: &Path, format: ImageFormat, e: &std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        Error::TruncatedImage {
            path: path.to_path_buf(),
            format: format.name(),
            reason: e.to_string(),
        }
    } else {
        Error::CorruptImage {
            path: path.to_path_buf(),
            format: format.name(),
            reason: e.to_string(),
        }
    }
}

/// The png crate's error; `limit` is the byte limit it was given.
fn png_error(path: &Path, e: png::DecodingError, limit: u64) -> Error {
    let f = ImageFormat::Png;
    match e {
        png::DecodingError::IoError(io) => io_error(path, f, &io),
        png::DecodingError::LimitsExceeded => Error::LimitExceeded {
            path: path.to_path_buf(),
            format: f.name(),
            what: "bytes of decoder memory for its frame (ancillary chunks: ICC profile, text)",
            max: limit,
        },
        other => Error::CorruptImage {
            path: path.to_path_buf(),
            format: f.name(),
            reason: other.to_string(),
        },
    }
}

fn checked_rgb(
    path: &Path,
    format: ImageFormat,
    w: usize,
    h: usize,
    data: Vec<u8>,
) -> Result<RgbImage> {
    RgbImage::new(w, h, data).ok_or_else(|| Error::CorruptImage {
        path: path.to_path_buf(),
        format: format.name(),
        reason: "decoder returned fewer pixels than the header declares".to_string(),
    })
}

type Decoded = (RgbImage, Option<u16>);

/// Bytes a PNG's ancillary chunks (decompressed ICC profile, text, EXIF) may take beyond
/// its frame: 16 MiB, more than the ICC profiles and text of real files.
const PNG_ANCILLARY_SLACK: u64 = 16 << 20;

fn decode_png(bytes: &[u8], path: &Path, opts: &DecodeOptions, header: &Header) -> Result<Decoded> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    // Raw samples: we unpack bit depths, palettes and tRNS ourselves, as Pillow does.
    decoder.set_transformations(png::Transformations::IDENTITY);
    // Pillow's RGB conversion uses neither the ICC profile nor text: never decompress them
    // (a 4x4 image with a 700 MB profile once took 710 MB).
    decoder.set_ignore_iccp_chunk(true);
    decoder.set_ignore_text_chunk(true);
    // The png crate counts its own allocations (ancillary chunks: iCCP, text, EXIF; row
    // buffers) against this; bound them by the frame they belong to, at most 8 bytes a
    // pixel (RGBA 16-bit) and a row each, plus PNG_ANCILLARY_SLACK for ICC profiles and
    // text (not by `max_pixels`: a 4x4 image must not carry a 700 MB profile).
    let frame = header.width.saturating_mul(header.height).saturating_mul(8);
    let limit = frame
        .saturating_add(header.height.saturating_mul(8))
        .saturating_add(PNG_ANCILLARY_SLACK);
    decoder.set_limits(png::Limits {
        bytes: usize::try_from(limit).unwrap_or(usize::MAX),
    });
    let mut reader = decoder.read_info().map_err(|e| png_error(path, e, limit))?;
    // The limit is checked here too, where the pixel buffer is allocated, on the frame the
    // png crate read (the same IHDR the probe read: it must be the first chunk).
    let (w, h) = (
        u64::from(reader.info().width),
        u64::from(reader.info().height),
    );
    if (w, h) != (header.width, header.height) {
        return Err(Error::CorruptImage {
            path: path.to_path_buf(),
            format: "PNG",
            reason: "the decoder read another frame size than the header".to_string(),
        });
    }
    if w.saturating_mul(h) > opts.max_pixels {
        return Err(Error::TooManyPixels {
            path: path.to_path_buf(),
            width: w,
            height: h,
            max_pixels: opts.max_pixels,
        });
    }
    let mut raw = vec![0u8; reader.output_buffer_size()];
    let frame = reader
        .next_frame(&mut raw)
        .map_err(|e| png_error(path, e, limit))?;
    let info = reader.info();
    let color = match info.color_type {
        png::ColorType::Grayscale => PngColor::Gray,
        png::ColorType::Rgb => PngColor::Rgb,
        png::ColorType::Indexed => PngColor::Indexed,
        png::ColorType::GrayscaleAlpha => PngColor::GrayAlpha,
        png::ColorType::Rgba => PngColor::Rgba,
    };
    let (width, height) = (frame.width as usize, frame.height as usize);
    let layout = PngLayout {
        color,
        depth: info.bit_depth as u8,
        width,
        height,
        line_size: frame.line_size,
        palette: info.palette.as_deref(),
        trns: info.trns.as_deref(),
    };
    if raw.len() < layout.line_size.saturating_mul(height) || layout.line_size == 0 {
        return Err(Error::CorruptImage {
            path: path.to_path_buf(),
            format: "PNG",
            reason: "decoded buffer smaller than the image".to_string(),
        });
    }
    let rgb = convert::png_to_rgb(&raw, &layout, opts.alpha);
    let orientation = png_exif(bytes).and_then(exif::orientation);
    Ok((
        checked_rgb(path, ImageFormat::Png, width, height, rgb)?,
        orientation,
    ))
}

/// Our JPEG decoder's (and marker walker's) reasons as the crate's error.
pub(crate) fn jpeg_error(path: &Path, e: JpegErr) -> Error {
    let path = path.to_path_buf();
    let format = ImageFormat::Jpeg.name();
    match e {
        JpegErr::Unsupported => Error::UnsupportedImage {
            path,
            format,
            reason: "arithmetic-coded, lossless, 12-bit or hierarchical JPEG (build \
                     clip-image with the `jpeg-decoder` feature to try it)"
                .to_string(),
        },
        JpegErr::Truncated(reason) => Error::TruncatedImage {
            path,
            format,
            reason: reason.to_string(),
        },
        JpegErr::Corrupt(reason) => Error::CorruptImage {
            path,
            format,
            reason,
        },
        JpegErr::FrameSize { width, height, .. } if width == 0 || height == 0 => {
            Error::ZeroSizedImage {
                path,
                width: width.into(),
                height: height.into(),
            }
        }
        JpegErr::FrameSize {
            width,
            height,
            max_pixels,
        } => Error::TooManyPixels {
            path,
            width: width.into(),
            height: height.into(),
            max_pixels,
        },
        JpegErr::Limit { what, max } => Error::LimitExceeded {
            path,
            format,
            what,
            max,
        },
    }
}

#[cfg(feature = "jpeg-decoder")]
fn jpeg_decoder_error(path: &Path, e: jpeg_decoder::Error) -> Error {
    let f = ImageFormat::Jpeg;
    match e {
        jpeg_decoder::Error::Io(io) => io_error(path, f, &io),
        jpeg_decoder::Error::Unsupported(feature) => Error::UnsupportedImage {
            path: path.to_path_buf(),
            format: f.name(),
            reason: format!("{feature:?}"),
        },
        other => Error::CorruptImage {
            path: path.to_path_buf(),
            format: f.name(),
            reason: other.to_string(),
        },
    }
}

fn decode_jpeg(bytes: &[u8], path: &Path, max_pixels: u64) -> Result<Decoded> {
    let f = ImageFormat::Jpeg;
    // Baseline and progressive files: our libjpeg-turbo-exact decoder. Others: jpeg-decoder
    // (feature `jpeg-decoder`), or refused.
    match super::jpeg::decode(bytes, max_pixels) {
        Ok(d) => {
            let rgb = match d.channels {
                1 => convert::gray_to_rgb(&d.data),
                3 => d.data,
                _ => convert::cmyk_to_rgb(&d.data),
            };
            let orientation = d.exif.as_deref().and_then(exif::orientation);
            Ok((checked_rgb(path, f, d.width, d.height, rgb)?, orientation))
        }
        #[cfg(feature = "jpeg-decoder")]
        Err(JpegErr::Unsupported) => decode_jpeg_fallback(bytes, path, max_pixels),
        Err(e) => Err(jpeg_error(path, e)),
    }
}

/// Arithmetic-coded and other files our decoder does not cover, via `jpeg-decoder` (feature
/// `jpeg-decoder`: more permissive than libjpeg-turbo, and not bit-exact with it).
#[cfg(feature = "jpeg-decoder")]
fn decode_jpeg_fallback(bytes: &[u8], path: &Path, max_pixels: u64) -> Result<Decoded> {
    let f = ImageFormat::Jpeg;
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    // Its own buffers, at most 4 bytes a pixel (CMYK) plus row slack, by our pixel limit.
    let buffer = max_pixels.saturating_mul(4).saturating_add(1 << 20);
    decoder.set_max_decoding_buffer_size(usize::try_from(buffer).unwrap_or(usize::MAX));
    decoder
        .read_info()
        .map_err(|e| jpeg_decoder_error(path, e))?;
    let Some(info) = decoder.info() else {
        return Err(Error::CorruptImage {
            path: path.to_path_buf(),
            format: f.name(),
            reason: "no frame header".to_string(),
        });
    };
    // Its own walker read this frame: check it too (ours refused the frame it read, if over).
    let (width, height) = (u64::from(info.width), u64::from(info.height));
    if width.saturating_mul(height) > max_pixels {
        return Err(Error::TooManyPixels {
            path: path.to_path_buf(),
            width,
            height,
            max_pixels,
        });
    }
    if info.pixel_format == jpeg_decoder::PixelFormat::L16 {
        return Err(Error::UnsupportedImage {
            path: path.to_path_buf(),
            format: f.name(),
            reason: "16-bit (lossless) JPEG; Pillow cannot read it either".to_string(),
        });
    }
    let pixels = decoder.decode().map_err(|e| jpeg_decoder_error(path, e))?;
    let (w, h) = (usize::from(info.width), usize::from(info.height));
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => convert::gray_to_rgb(&pixels),
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        // jpeg-decoder un-inverts Adobe CMYK (and turns YCCK into CMYK), giving
        // what Pillow holds in mode "CMYK" after its "CMYK;I" raw mode.
        jpeg_decoder::PixelFormat::CMYK32 => convert::cmyk_to_rgb(&pixels),
        other => {
            return Err(Error::UnsupportedImage {
                path: path.to_path_buf(),
                format: f.name(),
                reason: format!("pixel format {other:?}"),
            })
        }
    };
    let orientation = decoder.exif_data().and_then(exif::orientation);
    Ok((checked_rgb(path, f, w, h, rgb)?, orientation))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey_png(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Grayscale);
        let mut writer = enc.write_header().unwrap();
        writer
            .write_image_data(&vec![7u8; (w * h) as usize])
            .unwrap();
        writer.finish().unwrap();
        out
    }

    /// The PNG decoder checks the frame against the limit itself, whatever a probe did.
    #[test]
    fn png_decoder_checks_the_pixel_limit_itself() {
        let bytes = grey_png(40, 40);
        let header = Header {
            format: ImageFormat::Png,
            width: 40,
            height: 40,
            memory: 0,
        };
        let opts = DecodeOptions {
            max_pixels: 1000,
            ..DecodeOptions::default()
        };
        let r = decode_png(&bytes, Path::new("x"), &opts, &header);
        assert!(
            matches!(
                r,
                Err(Error::TooManyPixels {
                    width: 40,
                    height: 40,
                    ..
                })
            ),
            "{:?}",
            r.err()
        );
        let opts = DecodeOptions {
            max_pixels: 1600,
            ..opts
        };
        assert!(decode_png(&bytes, Path::new("x"), &opts, &header).is_ok());
    }
}
