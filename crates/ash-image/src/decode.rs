//! Image bytes → a decoded picture, within limits, never in part.
//!
//! Decoding is the `image` crate's (PNG, JPEG, TIFF, BMP; 8- and 16-bit;
//! grey, RGB and RGBA), with the EXIF orientation applied, so a photograph
//! taken sideways comes out upright. The structure of a JPEG or PNG is
//! checked first ([`crate::integrity`]), so a truncated file is refused
//! rather than decoded in part; DICOM files (`DICM` at byte 128, whatever
//! their name) go through [`crate::dicom`]. The declared size is checked
//! against [`ImageLimits`] from the header, before any pixel buffer is made,
//! and a panic inside a decoder becomes this file's error.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use crate::{ImageError, ImageLimits};

/// Runs `f`, turning a panic into an error naming the decoder's failure.
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, ImageError>) -> Result<T, ImageError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(ImageError::Failed(format!(
            "the image decoder failed on this file: {why}"
        )))
    })
}

/// Decodes an image with its EXIF orientation applied, within `limits`;
/// a DICOM file gives its first frame, rendered as [`crate::dicom`] says.
/// The file's structure is checked first (its JPEG segments, its PNG
/// chunks and their CRCs), so a truncated
/// or damaged JPEG or PNG is refused rather than decoded in part; a panic
/// inside a decoder is this file's error.
///
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<DynamicImage, ImageError> {
    decode_frame(bytes, limits, 0)
}

/// [`decode`] of frame `frame` (from 0): of a multi-frame DICOM object,
/// where a frame past the last is refused; any other image has frame 0 only.
///
/// ```
/// use ash_image::{decode_frame, ImageLimits};
/// let mut png = Vec::new();
/// image::DynamicImage::new_rgb8(4, 4)
///     .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
///     .unwrap();
/// assert!(decode_frame(&png, &ImageLimits::default(), 0).is_ok());
/// assert!(decode_frame(&png, &ImageLimits::default(), 1).is_err());
/// ```
pub fn decode_frame(
    bytes: &[u8],
    limits: &ImageLimits,
    frame: u32,
) -> Result<DynamicImage, ImageError> {
    guarded(|| decode_checked(bytes, limits, frame))
}

fn decode_checked(
    bytes: &[u8],
    limits: &ImageLimits,
    frame: u32,
) -> Result<DynamicImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Unsupported("empty file (0 bytes)".into()));
    }
    if crate::dicom::is_dicom(bytes) {
        return crate::dicom::decode(bytes, limits, frame);
    }
    if frame > 0 {
        return Err(ImageError::Unsupported(format!(
            "frame {} asked for; only DICOM objects have more than one",
            frame + 1
        )));
    }
    let (mut reader, format) = recognise(bytes)?;
    crate::integrity::check(format, bytes)?;
    let mut decoder_limits = Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    reader.limits(decoder_limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| describe(format, e, limits))?;
    let (w, h) = decoder.dimensions();
    limits.check(w, h)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| describe(format, e, limits))?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// A reader over image bytes held in memory.
type MemoryReader<'a> = ImageReader<Cursor<&'a [u8]>>;

/// A reader for `bytes` and their format, told from their first bytes.
fn recognise(bytes: &[u8]) -> Result<(MemoryReader<'_>, image::ImageFormat), ImageError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(ImageError::Read)?;
    match reader.format() {
        Some(format) => Ok((reader, format)),
        None => Err(ImageError::Unsupported(
            "unsupported or unrecognised image format (PNG, JPEG, TIFF, BMP and DICOM are read)"
                .into(),
        )),
    }
}

fn describe(format: image::ImageFormat, e: image::ImageError, limits: &ImageLimits) -> ImageError {
    let kind = format!("{format:?}").to_uppercase();
    match e {
        image::ImageError::Limits(_) => ImageError::OverLimit(format!(
            "{kind} image is over the size limits ({} pixels a side, {} pixels in all; \
             a decompression bomb?)",
            limits.max_side, limits.max_pixels
        )),
        image::ImageError::Unsupported(u) => {
            ImageError::Unsupported(format!("unsupported {kind} image: {u}"))
        }
        image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::Damaged(format!("truncated {kind} file: {io}"))
        }
        other => ImageError::Damaged(format!("corrupt or truncated {kind} file: {other}")),
    }
}

/// Bytes the decoded image (of `frame`'s size, for DICOM) takes, from its
/// header alone, once the declared size is checked against `limits`: what
/// a caller reserves before decoding ([`decode_frame`] holds about twice
/// this at its peak: the decoded picture and its 8-bit copy).
///
/// ```
/// use ash_image::{decoded_bytes, ImageLimits};
/// let mut png = Vec::new();
/// image::DynamicImage::new_rgb8(40, 30)
///     .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
///     .unwrap();
/// assert_eq!(decoded_bytes(&png, &ImageLimits::default()).unwrap(), 40 * 30 * 3);
/// ```
pub fn decoded_bytes(bytes: &[u8], limits: &ImageLimits) -> Result<u64, ImageError> {
    guarded(|| {
        if crate::dicom::is_dicom(bytes) {
            return crate::dicom::decoded_frame_bytes(bytes, limits);
        }
        let (reader, format) = recognise(bytes)?;
        let decoder = reader
            .into_decoder()
            .map_err(|e| describe(format, e, limits))?;
        let (w, h) = decoder.dimensions();
        limits.check(w, h)?;
        Ok(decoder.total_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_bytes_with_a_reason() {
        let limits = ImageLimits::default();
        assert!(decode(b"", &limits)
            .unwrap_err()
            .to_string()
            .contains("empty"));
        assert!(matches!(
            decode(b"hello world, not an image", &limits),
            Err(ImageError::Unsupported(m)) if m.contains("unrecognised")
        ));
        let mut png = Vec::new();
        DynamicImage::new_rgb8(64, 64)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let err = decode(&png[..png.len() / 2], &limits).unwrap_err();
        assert!(
            matches!(&err, ImageError::Damaged(m) if m.contains("PNG")),
            "{err}"
        );
        let small = ImageLimits {
            max_side: 32,
            ..limits
        };
        assert!(matches!(
            decode(&png, &small),
            Err(ImageError::OverLimit(_))
        ));
        let few = ImageLimits {
            max_pixels: 100,
            ..limits
        };
        assert!(matches!(decode(&png, &few), Err(ImageError::OverLimit(_))));
    }
}
