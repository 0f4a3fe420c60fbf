//! Image file → the model's input tensor, as the manifest says.
//!
//! Decoding is the `image` crate's (PNG, JPEG, TIFF, BMP; 8- and 16-bit;
//! grey, RGB and RGBA), with the EXIF orientation applied, so a photograph
//! taken sideways is encoded upright. Sixteen-bit samples are scaled to
//! 0..255, alpha is dropped. Resizing is `fast_image_resize` (its bilinear
//! filter is Pillow's, which the plugin trains with), then each channel
//! becomes `(pixel · scale − mean) / std`, laid out NCHW. DICOM files
//! (`DICM` at byte 128, whatever their name) go through [`crate::dicom`]
//! and give their first frame.
//!
//! Every failure is a sentence naming the reason (the caller names the
//! file): empty, unrecognised format, truncated or corrupt, too large.

use std::io::Cursor;
use std::path::Path;

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use super::manifest::{ChannelOrder, InputSpec, ResizeFilter};

/// Bounds on what is decoded, so that a small file cannot claim gigabytes
/// (a decompression bomb).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest width or height, in pixels.
    pub max_side: u32,
    /// Largest width × height.
    pub max_pixels: u64,
    /// Largest file, in bytes.
    pub max_file_bytes: u64,
}

impl Default for ImageLimits {
    /// 16384 pixels a side, 100 megapixels, 256 MiB: above any fundus
    /// camera or OCT export, far below what would exhaust memory.
    fn default() -> Self {
        Self {
            max_side: 16_384,
            max_pixels: 100_000_000,
            max_file_bytes: 256 << 20,
        }
    }
}

/// Turns image files into input tensors for one model.
#[derive(Debug, Clone)]
pub struct Preprocessor {
    spec: InputSpec,
    limits: ImageLimits,
}

impl Preprocessor {
    /// A preprocessor for `spec`, refusing images over `limits`.
    pub fn new(spec: InputSpec, limits: ImageLimits) -> Self {
        Self { spec, limits }
    }

    /// Floats per image: channels × height × width.
    pub fn tensor_len(&self) -> usize {
        let [h, w] = self.spec.size;
        self.spec.channel_order.channels() * h as usize * w as usize
    }

    /// The limits images are held to.
    pub fn limits(&self) -> ImageLimits {
        self.limits
    }

    /// The same preprocessing under other limits (the server's uploads
    /// take smaller images than an ingest).
    pub fn with_limits(&self, limits: ImageLimits) -> Self {
        Self {
            spec: self.spec.clone(),
            limits,
        }
    }

    /// Reads, decodes and converts one file.
    pub fn load(&self, path: &Path) -> Result<Vec<f32>, ImageError> {
        self.load_frame(path, 0)
    }

    /// Reads, decodes and converts frame `frame` (from 0) of one file: a
    /// frame of a multi-frame DICOM object, or 0 for any image.
    pub fn load_frame(&self, path: &Path, frame: u32) -> Result<Vec<f32>, ImageError> {
        let bytes = crate::untrusted::read_capped(path, self.limits.max_file_bytes)?;
        self.tensor_frame(&bytes, frame)
    }

    /// Decodes and converts an image held in memory. A panic inside a
    /// decoder or the resizer becomes this image's error, never the caller's.
    pub fn tensor(&self, bytes: &[u8]) -> Result<Vec<f32>, ImageError> {
        self.tensor_frame(bytes, 0)
    }

    /// [`Preprocessor::tensor`] of frame `frame` (from 0); see [`decode_frame`].
    pub fn tensor_frame(&self, bytes: &[u8], frame: u32) -> Result<Vec<f32>, ImageError> {
        guarded(|| {
            let image = decode_frame(bytes, &self.limits, frame)?;
            Ok(self.normalise(&self.resize(&image)?))
        })
    }

    /// The image at the model's size and channel count, 8 bits a sample.
    pub fn resize(&self, image: &DynamicImage) -> Result<(Vec<u8>, usize), ImageError> {
        let [h, w] = self.spec.size;
        let (src, pixel, channels) = match self.spec.channel_order {
            ChannelOrder::Grey => (image.to_luma8().into_raw(), PixelType::U8, 1),
            ChannelOrder::Rgb | ChannelOrder::Bgr => {
                (image.to_rgb8().into_raw(), PixelType::U8x3, 3)
            }
        };
        if image.width() == w && image.height() == h {
            return Ok((src, channels));
        }
        let src = Image::from_vec_u8(image.width(), image.height(), src, pixel)
            .map_err(|e| ImageError::Failed(format!("cannot resize: {e}")))?;
        let mut dst = Image::new(w, h, pixel);
        let algorithm = match self.spec.resize {
            ResizeFilter::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
            ResizeFilter::Lanczos3 => ResizeAlg::Convolution(FilterType::Lanczos3),
            ResizeFilter::Nearest => ResizeAlg::Nearest,
        };
        Resizer::new()
            .resize(&src, &mut dst, &ResizeOptions::new().resize_alg(algorithm))
            .map_err(|e| ImageError::Failed(format!("cannot resize: {e}")))?;
        Ok((dst.into_vec(), channels))
    }

    /// Interleaved 8-bit pixels → normalised NCHW floats.
    fn normalise(&self, (pixels, channels): &(Vec<u8>, usize)) -> Vec<f32> {
        let plane = pixels.len() / channels;
        let mut out = vec![0f32; pixels.len()];
        let pick = |v: &[f32], c: usize| if v.len() == 1 { v[0] } else { v[c] };
        for c in 0..*channels {
            // BGR models read the channels in reverse.
            let source = match self.spec.channel_order {
                ChannelOrder::Bgr => 2 - c,
                _ => c,
            };
            let (mean, std) = (pick(&self.spec.mean, c), pick(&self.spec.std, c));
            let scale = self.spec.scale / std;
            let offset = mean / std;
            let dst = &mut out[c * plane..(c + 1) * plane];
            for (d, px) in dst.iter_mut().zip(pixels.chunks_exact(*channels)) {
                *d = f32::from(px[source]) * scale - offset;
            }
        }
        out
    }
}

/// Runs `f`, turning a panic into an error naming the decoder's failure.
fn guarded<T>(f: impl FnOnce() -> Result<T, ImageError>) -> Result<T, ImageError> {
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
/// a DICOM file gives its first frame ([`dicom::decode`]).
/// The file's structure is checked first ([`integrity`]), so a truncated
/// or damaged JPEG or PNG is refused rather than decoded in part; a panic
/// inside a decoder is this file's error.
///
/// [`integrity`]: super::integrity
/// [`dicom::decode`]: super::dicom::decode
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<DynamicImage, ImageError> {
    decode_frame(bytes, limits, 0)
}

/// [`decode`] of frame `frame` (from 0): of a multi-frame DICOM object,
/// where a frame past the last is refused; any other image has frame 0 only.
///
/// ```
/// use ash_encoder::preprocess::{decode_frame, ImageLimits};
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
    if super::dicom::is_dicom(bytes) {
        return super::dicom::decode(bytes, limits, frame);
    }
    if frame > 0 {
        return Err(ImageError::Unsupported(format!(
            "frame {} asked for; only DICOM objects have more than one",
            frame + 1
        )));
    }
    let (mut reader, format) = recognise(bytes)?;
    super::integrity::check(format, bytes)?;
    let mut decoder_limits = Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    reader.limits(decoder_limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| describe(format, e, limits))?;
    let (w, h) = decoder.dimensions();
    check_dimensions(w, h, limits)?;
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

/// An image's declared size against `limits` (from its header, before
/// any pixel buffer is made).
fn check_dimensions(w: u32, h: u32, limits: &ImageLimits) -> Result<(), ImageError> {
    if w == 0 || h == 0 {
        return Err(ImageError::Damaged(format!(
            "image has no pixels ({w}×{h})"
        )));
    }
    if w.max(h) > limits.max_side {
        return Err(ImageError::OverLimit(format!(
            "{w}×{h} pixels is over the limit of {} pixels a side",
            limits.max_side
        )));
    }
    if u64::from(w) * u64::from(h) > limits.max_pixels {
        return Err(ImageError::OverLimit(format!(
            "{w}×{h} pixels is over the limit of {} pixels (a decompression bomb?)",
            limits.max_pixels
        )));
    }
    Ok(())
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
/// use ash_encoder::preprocess::{decoded_bytes, ImageLimits};
/// let mut png = Vec::new();
/// image::DynamicImage::new_rgb8(40, 30)
///     .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
///     .unwrap();
/// assert_eq!(decoded_bytes(&png, &ImageLimits::default()).unwrap(), 40 * 30 * 3);
/// ```
pub fn decoded_bytes(bytes: &[u8], limits: &ImageLimits) -> Result<u64, ImageError> {
    guarded(|| {
        if super::dicom::is_dicom(bytes) {
            return super::dicom::decoded_frame_bytes(bytes, limits);
        }
        let (reader, format) = recognise(bytes)?;
        let decoder = reader
            .into_decoder()
            .map_err(|e| describe(format, e, limits))?;
        let (w, h) = decoder.dimensions();
        check_dimensions(w, h, limits)?;
        Ok(decoder.total_bytes())
    })
}

/// Why an image was refused. The variant is the class a caller acts on;
/// the text says what exactly, for a person.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Read(std::io::Error),
    /// Over one of the [`ImageLimits`] (file bytes, pixels a side or in all).
    #[error("{0}")]
    OverLimit(String),
    /// Not an image this build reads: empty, an unknown format, an
    /// unsupported feature of a known one.
    #[error("{0}")]
    Unsupported(String),
    /// Cut short or damaged, found by the integrity check or the decoder.
    #[error("{0}")]
    Damaged(String),
    /// A decoder or the resizer failed (or panicked) on this file.
    #[error("{0}")]
    Failed(String),
}

impl From<crate::untrusted::FileError> for ImageError {
    fn from(e: crate::untrusted::FileError) -> Self {
        use crate::untrusted::FileError;
        match e {
            FileError::Io(io) => ImageError::Read(io),
            FileError::TooLarge { .. } => ImageError::OverLimit(e.to_string()),
            other => ImageError::Unsupported(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(order: ChannelOrder, size: [u32; 2]) -> InputSpec {
        InputSpec {
            name: "image".into(),
            layout: "NCHW".into(),
            size,
            channel_order: order,
            resize: ResizeFilter::Bilinear,
            scale: 1.0,
            mean: vec![0.0],
            std: vec![1.0],
        }
    }

    #[test]
    fn normalise_is_nchw_with_mean_and_std() {
        let mut s = spec(ChannelOrder::Rgb, [1, 2]);
        s.scale = 1.0 / 255.0;
        s.mean = vec![0.5, 0.0, 0.0];
        s.std = vec![0.5, 1.0, 2.0];
        let p = Preprocessor::new(s, ImageLimits::default());
        let px = (vec![255, 0, 255, 0, 255, 51], 3);
        let t = p.normalise(&px);
        let want = [1.0, -1.0, 0.0, 1.0, 0.5, 0.1];
        for (a, b) in t.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{t:?}");
        }
        let bgr = Preprocessor::new(spec(ChannelOrder::Bgr, [1, 1]), ImageLimits::default());
        assert_eq!(bgr.normalise(&(vec![1, 2, 3], 3)), vec![3.0, 2.0, 1.0]);
    }

    /// Expected values are Pillow 13's `Image.resize(..., BILINEAR)` of the
    /// same pixels, the resize the plugin trains with.
    #[test]
    fn resize_matches_pillow_bilinear() {
        let mut bands = image::RgbImage::new(4, 4);
        for (x, _, p) in bands.enumerate_pixels_mut() {
            *p = if x < 2 {
                image::Rgb([200, 0, 0])
            } else {
                image::Rgb([0, 0, 100])
            };
        }
        let p = Preprocessor::new(spec(ChannelOrder::Rgb, [1, 2]), ImageLimits::default());
        let (px, _) = p.resize(&DynamicImage::ImageRgb8(bands)).unwrap();
        assert_eq!(px, vec![171, 0, 14, 29, 0, 86]);

        let ramp: Vec<u8> = (0..6 * 5 * 3).map(|v| (v * 2) as u8).collect();
        let ramp = image::RgbImage::from_raw(6, 5, ramp).unwrap();
        let p = Preprocessor::new(spec(ChannelOrder::Rgb, [3, 4]), ImageLimits::default());
        let (px, _) = p.resize(&DynamicImage::ImageRgb8(ramp)).unwrap();
        let pillow: Vec<u8> = vec![
            17, 19, 21, 26, 28, 30, 34, 36, 38, 43, 45, 47, 74, 76, 78, 83, 85, 87, 91, 93, 95,
            100, 102, 104, 131, 133, 135, 140, 142, 144, 148, 150, 152, 157, 159, 161,
        ];
        assert_eq!(px, pillow);
    }

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
