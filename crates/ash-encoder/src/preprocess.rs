//! Image file → the model's input tensor, as the manifest says.
//!
//! The file is read and decoded by `ash_image` (limits, damage checks,
//! DICOM, EXIF orientation), resized to the model's size with the
//! manifest's filter and channels ([`ash_image::resize`], Pillow's bilinear
//! filter, which the plugin trains with), then each channel becomes
//! `(pixel · scale − mean) / std`, laid out NCHW.

use std::path::Path;

use ash_image::{decode_frame, untrusted, Channels, Filter, ImageError, ImageLimits};
use image::DynamicImage;

use super::manifest::{ChannelOrder, InputSpec, ResizeFilter};

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
        let bytes = untrusted::read_capped(path, self.limits.max_file_bytes)?;
        self.tensor_frame(&bytes, frame)
    }

    /// Decodes and converts an image held in memory. A panic inside a
    /// decoder or the resizer becomes this image's error, never the caller's.
    pub fn tensor(&self, bytes: &[u8]) -> Result<Vec<f32>, ImageError> {
        self.tensor_frame(bytes, 0)
    }

    /// [`Preprocessor::tensor`] of frame `frame` (from 0); see [`decode_frame`].
    pub fn tensor_frame(&self, bytes: &[u8], frame: u32) -> Result<Vec<f32>, ImageError> {
        let image = decode_frame(bytes, &self.limits, frame)?;
        self.image_tensor(&image)
    }

    /// The tensor of an image already decoded (pixels a caller holds, a
    /// numpy array from Python), held to the same limits as a file.
    pub fn image_tensor(&self, image: &DynamicImage) -> Result<Vec<f32>, ImageError> {
        self.limits.check(image.width(), image.height())?;
        Ok(self.normalise(&self.resize(image)?))
    }

    /// The image at the model's size and channel count, 8 bits a sample.
    pub fn resize(&self, image: &DynamicImage) -> Result<(Vec<u8>, usize), ImageError> {
        let [h, w] = self.spec.size;
        let channels = match self.spec.channel_order {
            ChannelOrder::Grey => Channels::Grey,
            ChannelOrder::Rgb | ChannelOrder::Bgr => Channels::Rgb,
        };
        let filter = match self.spec.resize {
            ResizeFilter::Bilinear => Filter::Bilinear,
            ResizeFilter::Lanczos3 => Filter::Lanczos3,
            ResizeFilter::Nearest => Filter::Nearest,
        };
        let pixels = ash_image::resize(image, w, h, channels, filter)?;
        Ok((pixels, channels.count()))
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

    /// The manifest's size (height, width), channels and filter reach the
    /// resize; the resize itself is `ash_image`'s (tested against Pillow there).
    #[test]
    fn resize_takes_size_and_channels_from_the_manifest() {
        let picture = DynamicImage::new_rgb8(10, 10);
        let grey = Preprocessor::new(spec(ChannelOrder::Grey, [3, 5]), ImageLimits::default());
        let (px, channels) = grey.resize(&picture).unwrap();
        assert_eq!((px.len(), channels), (15, 1));
        let bgr = Preprocessor::new(spec(ChannelOrder::Bgr, [2, 4]), ImageLimits::default());
        let (px, channels) = bgr.resize(&picture).unwrap();
        assert_eq!((px.len(), channels), (24, 3));
        assert_eq!(bgr.tensor_len(), 24);
    }
}
