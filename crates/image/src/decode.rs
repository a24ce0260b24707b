//! Decoding PNG (`png` crate) and JPEG (our `jpeg` module, libjpeg-turbo-exact;
//! `jpeg-decoder` only for arithmetic-coded and other rare files) into
//! Pillow-equivalent 8-bit RGB, with typed errors and the pixel limit checked
//! before allocation.
//!
//! Colour conversion lives in `convert.rs`, EXIF orientation in `exif.rs`.

use std::io::Cursor;
use std::panic::AssertUnwindSafe;
use std::path::Path;

use super::convert::{self, PngColor, PngLayout};
use super::jpeg::JpegErr;
use super::probe::{png_exif, probe, Header, ImageFormat};
use super::{exif, DecodeOptions, RgbImage};
use crate::{Error, Result};

/// Reads and decodes an image file to RGB.
pub fn decode_file(path: &Path, opts: &DecodeOptions) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_bytes(&bytes, path, opts)
}

/// Decodes an encoded image held in memory; `name` is used in error messages.
pub fn decode_bytes(bytes: &[u8], name: &Path, opts: &DecodeOptions) -> Result<RgbImage> {
    let header = probe(bytes, name, opts.max_pixels)?;
    // Safety net: a panic inside a decoder crate on hostile input becomes a
    // typed error instead of taking the caller down.
    let decoded = std::panic::catch_unwind(AssertUnwindSafe(|| match header.format {
        ImageFormat::Png => decode_png(bytes, name, opts, &header),
        ImageFormat::Jpeg => decode_jpeg(bytes, name),
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
            return Ok(exif::apply_orientation(image, o));
        }
    }
    Ok(image)
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

fn png_error(path: &Path, e: png::DecodingError) -> Error {
    let f = ImageFormat::Png;
    match e {
        png::DecodingError::IoError(io) => io_error(path, f, &io),
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

fn decode_png(bytes: &[u8], path: &Path, opts: &DecodeOptions, header: &Header) -> Result<Decoded> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    // Raw samples: we unpack bit depths, palettes and tRNS ourselves, as Pillow does.
    decoder.set_transformations(png::Transformations::IDENTITY);
    // The pixel limit was checked in `probe`; allow the buffer that implies
    // (at most 8 bytes per pixel, RGBA 16-bit) plus row slack.
    let limit = opts
        .max_pixels
        .saturating_mul(8)
        .saturating_add(header.height.saturating_mul(8) + (1 << 20));
    decoder.set_limits(png::Limits {
        bytes: usize::try_from(limit).unwrap_or(usize::MAX),
    });
    let mut reader = decoder.read_info().map_err(|e| png_error(path, e))?;
    let mut raw = vec![0u8; reader.output_buffer_size()];
    let frame = reader
        .next_frame(&mut raw)
        .map_err(|e| png_error(path, e))?;
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

#[cfg(feature = "jpeg-decoder")]
fn jpeg_error(path: &Path, e: jpeg_decoder::Error) -> Error {
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

// Without the fallback every arm returns; the returns stay for the build that has it.
#[cfg_attr(not(feature = "jpeg-decoder"), allow(clippy::needless_return))]
fn decode_jpeg(bytes: &[u8], path: &Path) -> Result<Decoded> {
    let f = ImageFormat::Jpeg;
    // Baseline files: our libjpeg-turbo-exact decoder. Others: jpeg-decoder.
    match super::jpeg::decode(bytes) {
        Ok(d) => {
            let rgb = match d.channels {
                1 => convert::gray_to_rgb(&d.data),
                3 => d.data,
                _ => convert::cmyk_to_rgb(&d.data),
            };
            let orientation = d.exif.as_deref().and_then(exif::orientation);
            return Ok((checked_rgb(path, f, d.width, d.height, rgb)?, orientation));
        }
        Err(JpegErr::Unsupported) => {
            #[cfg(not(feature = "jpeg-decoder"))]
            return Err(Error::UnsupportedImage {
                path: path.to_path_buf(),
                format: f.name(),
                reason: "arithmetic-coded, lossless, 12-bit or hierarchical JPEG (build \
                         clip-image with the `jpeg-decoder` feature to try it)"
                    .to_string(),
            });
        }
        Err(JpegErr::Truncated(reason)) => {
            return Err(Error::TruncatedImage {
                path: path.to_path_buf(),
                format: f.name(),
                reason: reason.to_string(),
            })
        }
        Err(JpegErr::Corrupt(reason)) => {
            return Err(Error::CorruptImage {
                path: path.to_path_buf(),
                format: f.name(),
                reason,
            })
        }
    }
    #[cfg(feature = "jpeg-decoder")]
    return decode_jpeg_fallback(bytes, path);
}

/// Arithmetic-coded and other files our decoder does not cover, via `jpeg-decoder` (feature
/// `jpeg-decoder`: more permissive than libjpeg-turbo, and not bit-exact with it).
#[cfg(feature = "jpeg-decoder")]
fn decode_jpeg_fallback(bytes: &[u8], path: &Path) -> Result<Decoded> {
    let f = ImageFormat::Jpeg;
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.set_max_decoding_buffer_size(usize::MAX);
    decoder.read_info().map_err(|e| jpeg_error(path, e))?;
    let Some(info) = decoder.info() else {
        return Err(Error::CorruptImage {
            path: path.to_path_buf(),
            format: f.name(),
            reason: "no frame header".to_string(),
        });
    };
    if info.pixel_format == jpeg_decoder::PixelFormat::L16 {
        return Err(Error::UnsupportedImage {
            path: path.to_path_buf(),
            format: f.name(),
            reason: "16-bit (lossless) JPEG; Pillow cannot read it either".to_string(),
        });
    }
    let pixels = decoder.decode().map_err(|e| jpeg_error(path, e))?;
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
