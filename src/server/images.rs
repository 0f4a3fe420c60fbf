//! Images of indexed documents: served only from inside the configured
//! roots. Paths are resolved (symbolic links included) before the check,
//! so neither `..` nor a link can lead outside a root.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use image::ImageFormat;

use super::budget::MemoryBudget;
use super::error::ApiError;
use super::App;
use ash_image::untrusted::FileError;
use ash_image::{decode_frame, decoded_bytes, ImageError, ImageLimits};

/// A served image file that could not be read, as the API answers it:
/// over the size limit 413, not a regular file 422, anything else 404
/// (the server's file layout stays private).
pub fn unreadable(e: FileError) -> ApiError {
    match e {
        FileError::TooLarge { limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the image file is over the limit of {limit} bytes"),
        ),
        FileError::NotRegular(what) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_image",
            format!("the image is not a regular file but {what}"),
        ),
        _ => ApiError::not_found("the image file is not readable"),
    }
}

/// An image refused by the decoder: 422, with the reason.
pub fn bad_image(e: ImageError) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_image", e.to_string())
}

/// Runs `work` (which decodes `bytes` within `limits`) once its peak
/// memory, read from the image's header, is reserved from the app's
/// budget; a header over the limits is refused before anything is reserved.
pub fn within_budget<T>(
    app: &App,
    bytes: &[u8],
    limits: &ImageLimits,
    work: impl FnOnce() -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let decoded = decoded_bytes(bytes, limits).map_err(bad_image)?;
    let peak = MemoryBudget::peak(bytes.len() as u64, decoded);
    let _held = app.memory.reserve(peak, app.config.image_queue())?;
    work()
}

/// The real path of `path` if it lies inside one of `roots` (which are
/// already canonical).
pub fn inside_roots(path: &Path, roots: &[PathBuf]) -> Result<PathBuf, ApiError> {
    if roots.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "no_image_roots",
            "this server has no image roots configured (serve --image-root DIR)",
        ));
    }
    let real = path
        .canonicalize()
        .map_err(|_| ApiError::not_found("the image file is not there"))?;
    if roots.iter().any(|r| real.starts_with(r)) {
        Ok(real)
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "outside_image_roots",
            "the image is outside the configured image roots",
        ))
    }
}

/// The media type of an image file, from its content.
pub fn media_type(bytes: &[u8]) -> &'static str {
    match image::guess_format(bytes) {
        Ok(ImageFormat::Png) => "image/png",
        Ok(ImageFormat::Jpeg) => "image/jpeg",
        Ok(ImageFormat::Tiff) => "image/tiff",
        Ok(ImageFormat::Bmp) => "image/bmp",
        _ => "application/octet-stream",
    }
}

/// A JPEG at most `size` pixels a side, aspect kept.
pub fn thumbnail(
    bytes: &[u8],
    size: u32,
    limits: &ImageLimits,
    frame: u32,
) -> Result<Vec<u8>, ApiError> {
    let image = decode_frame(bytes, limits, frame).map_err(bad_image)?;
    let small = image.thumbnail(size, size).to_rgb8();
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(small)
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
        .map_err(|e| ApiError::internal(format!("cannot write the thumbnail: {e}")))?;
    Ok(out)
}

/// The whole picture (frame `frame`, from 0) as a PNG (8 bits a sample;
/// grey stays grey).
pub fn render_png(bytes: &[u8], limits: &ImageLimits, frame: u32) -> Result<Vec<u8>, ApiError> {
    let image = decode_frame(bytes, limits, frame).map_err(bad_image)?;
    let image = if image.color().has_color() {
        image::DynamicImage::ImageRgb8(image.to_rgb8())
    } else {
        image::DynamicImage::ImageLuma8(image.to_luma8())
    };
    let mut out = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .map_err(|e| ApiError::internal(format!("cannot write the PNG: {e}")))?;
    Ok(out)
}
