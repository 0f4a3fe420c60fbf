//! How large an image may be, checked from its header before any pixel
//! buffer is made.

use crate::ImageError;

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

impl ImageLimits {
    /// Refuses a width and height over these limits, or with no pixels:
    /// checked from a header before any pixel buffer is made, and for
    /// pixels a caller hands over already decoded.
    ///
    /// ```
    /// use ash_image::ImageLimits;
    /// let limits = ImageLimits::default();
    /// assert!(limits.check(512, 512).is_ok());
    /// assert!(limits.check(20_000, 10).is_err());
    /// assert!(limits.check(0, 10).is_err());
    /// ```
    pub fn check(&self, w: u32, h: u32) -> Result<(), ImageError> {
        if w == 0 || h == 0 {
            return Err(ImageError::Damaged(format!(
                "image has no pixels ({w}×{h})"
            )));
        }
        if w.max(h) > self.max_side {
            return Err(ImageError::OverLimit(format!(
                "{w}×{h} pixels is over the limit of {} pixels a side",
                self.max_side
            )));
        }
        if u64::from(w) * u64::from(h) > self.max_pixels {
            return Err(ImageError::OverLimit(format!(
                "{w}×{h} pixels is over the limit of {} pixels (a decompression bomb?)",
                self.max_pixels
            )));
        }
        Ok(())
    }
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
