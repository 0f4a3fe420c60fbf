//! A decoded picture → 8-bit interleaved pixels of a given size, the form
//! an encoder's input is made from.
//!
//! Resizing is `fast_image_resize`; its bilinear filter is Pillow's, which
//! the plugin trains with, so a code made here equals one made in Python.

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::DynamicImage;

use crate::decode::guarded;
use crate::ImageError;

/// The channels kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    /// One grey channel (luma).
    Grey,
    /// Red, green, blue; alpha dropped.
    Rgb,
}

impl Channels {
    /// Samples per pixel.
    pub fn count(self) -> usize {
        match self {
            Channels::Grey => 1,
            Channels::Rgb => 3,
        }
    }
}

/// How pixels are resampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Bilinear, antialiased when shrinking (Pillow's `BILINEAR`).
    Bilinear,
    /// Lanczos with a = 3 (Pillow's `LANCZOS`).
    Lanczos3,
    /// The nearest pixel.
    Nearest,
}

/// `image` as `width` × `height` pixels of `channels`, 8 bits a sample,
/// interleaved row by row. A panic inside the resizer is this image's error.
///
/// ```
/// use ash_image::{resize, Channels, Filter};
/// let picture = image::DynamicImage::new_rgb8(40, 30);
/// let pixels = resize(&picture, 4, 3, Channels::Grey, Filter::Bilinear).unwrap();
/// assert_eq!(pixels.len(), 4 * 3);
/// ```
pub fn resize(
    image: &DynamicImage,
    width: u32,
    height: u32,
    channels: Channels,
    filter: Filter,
) -> Result<Vec<u8>, ImageError> {
    guarded(|| {
        let (src, pixel) = match channels {
            Channels::Grey => (image.to_luma8().into_raw(), PixelType::U8),
            Channels::Rgb => (image.to_rgb8().into_raw(), PixelType::U8x3),
        };
        if image.width() == width && image.height() == height {
            return Ok(src);
        }
        let src = Image::from_vec_u8(image.width(), image.height(), src, pixel)
            .map_err(|e| ImageError::Failed(format!("cannot resize: {e}")))?;
        let mut dst = Image::new(width, height, pixel);
        let algorithm = match filter {
            Filter::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
            Filter::Lanczos3 => ResizeAlg::Convolution(FilterType::Lanczos3),
            Filter::Nearest => ResizeAlg::Nearest,
        };
        Resizer::new()
            .resize(&src, &mut dst, &ResizeOptions::new().resize_alg(algorithm))
            .map_err(|e| ImageError::Failed(format!("cannot resize: {e}")))?;
        Ok(dst.into_vec())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values are Pillow 13's `Image.resize(..., BILINEAR)` of the
    /// same pixels, the resize the plugin trains with.
    #[test]
    fn bilinear_matches_pillow() {
        let mut bands = image::RgbImage::new(4, 4);
        for (x, _, p) in bands.enumerate_pixels_mut() {
            *p = if x < 2 {
                image::Rgb([200, 0, 0])
            } else {
                image::Rgb([0, 0, 100])
            };
        }
        let bands = DynamicImage::ImageRgb8(bands);
        let px = resize(&bands, 2, 1, Channels::Rgb, Filter::Bilinear).unwrap();
        assert_eq!(px, vec![171, 0, 14, 29, 0, 86]);

        let ramp: Vec<u8> = (0..6 * 5 * 3).map(|v| (v * 2) as u8).collect();
        let ramp = DynamicImage::ImageRgb8(image::RgbImage::from_raw(6, 5, ramp).unwrap());
        let px = resize(&ramp, 4, 3, Channels::Rgb, Filter::Bilinear).unwrap();
        let pillow: Vec<u8> = vec![
            17, 19, 21, 26, 28, 30, 34, 36, 38, 43, 45, 47, 74, 76, 78, 83, 85, 87, 91, 93, 95,
            100, 102, 104, 131, 133, 135, 140, 142, 144, 148, 150, 152, 157, 159, 161,
        ];
        assert_eq!(px, pillow);
    }

    #[test]
    fn the_same_size_is_passed_through() {
        let grey = DynamicImage::ImageLuma8(image::GrayImage::from_raw(2, 1, vec![7, 9]).unwrap());
        assert_eq!(
            resize(&grey, 2, 1, Channels::Grey, Filter::Nearest).unwrap(),
            vec![7, 9]
        );
    }
}
