//! How large an image may be, checked from its header before any pixel
//! buffer is made.

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
