//! What a DICOM object's pixel module declares, and the checks that hold
//! it to the bytes present: frames against the pixel data, the declared
//! size against the image limits, and each compressed frame's own header
//! (RLE segments, JPEG and JPEG 2000 sizes) against the module, since
//! every decoder allocates by what it is told.

use super::scan::MAX_FRAMES;
use crate::{ImageError, ImageLimits};

/// Segments an RLE frame may have (PS3.5 G.3.1).
const RLE_SEGMENTS: usize = 15;

/// What the scan learnt of an object: enough to bound everything that
/// follows (decoding, frames per object, memory reserved for decoding).
#[derive(Debug, Clone, Default)]
pub(crate) struct Scan {
    pub(super) pixels: Option<Pixels>,
    pub(super) module: PixelModule,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Pixels {
    /// Native pixel data of this many bytes.
    Native(u64),
    /// Encapsulated pixel data in this many fragments (offset table not counted).
    Encapsulated(u64),
}

/// The image pixel module, as declared (top level only).
#[derive(Debug, Clone, Default)]
pub(super) struct PixelModule {
    pub(super) rows: Option<u64>,
    pub(super) columns: Option<u64>,
    pub(super) samples: Option<u64>,
    pub(super) bits_allocated: Option<u64>,
    pub(super) bits_stored: Option<u64>,
    pub(super) frames: Option<u64>,
    pub(super) photometric: String,
}

impl Scan {
    /// Frames the pixel data holds: `NumberOfFrames` (1 when absent), once
    /// the pixel bytes or fragments present are shown to bear it out.
    /// An object without pixel data has 1 (decoding refuses it by name).
    pub fn frames(&self) -> Result<u32, ImageError> {
        let Some(pixels) = self.pixels else {
            return Ok(1);
        };
        let declared = self.module.frames.unwrap_or(1).max(1);
        if declared > u64::from(MAX_FRAMES) {
            return Err(ImageError::OverLimit(format!(
                "DICOM object declares {declared} frames; at most {MAX_FRAMES} are read"
            )));
        }
        match pixels {
            Pixels::Native(present) => {
                let need = self.frame_bits()?.saturating_mul(u128::from(declared));
                let need = need.div_ceil(8);
                if need > u128::from(present) {
                    return Err(ImageError::Damaged(format!(
                        "DICOM pixel data holds {present} bytes; {declared} frame(s) of {} need {need} \
                         (a truncated object, or a header that claims more than is there)",
                        self.describe_frame()
                    )));
                }
            }
            Pixels::Encapsulated(0) => {
                return Err(ImageError::Damaged(
                    "DICOM encapsulated pixel data holds no fragments".into(),
                ))
            }
            Pixels::Encapsulated(fragments) if declared > fragments => {
                return Err(ImageError::Damaged(format!(
                    "DICOM object declares {declared} frames; its encapsulated pixel data holds \
                     {fragments} fragment(s)"
                )))
            }
            Pixels::Encapsulated(_) => {}
        }
        Ok(declared as u32)
    }

    /// Checks the declared image size against `limits`, before any pixel
    /// buffer is made.
    pub fn check_limits(&self, limits: &ImageLimits) -> Result<(), ImageError> {
        let (rows, columns) = (
            self.module.rows.unwrap_or(0),
            self.module.columns.unwrap_or(0),
        );
        if rows == 0 || columns == 0 {
            return Err(ImageError::Damaged(format!(
                "DICOM image has no pixels ({columns}×{rows})"
            )));
        }
        if rows.max(columns) > u64::from(limits.max_side) || rows * columns > limits.max_pixels {
            return Err(ImageError::OverLimit(format!(
                "DICOM image of {columns}×{rows} pixels is over the size limits ({} pixels a side, \
                 {} pixels in all)",
                limits.max_side, limits.max_pixels
            )));
        }
        // Decoders size lookup tables by the stored bits (2^bits entries).
        let bits = self.module.bits_allocated.unwrap_or(0);
        let stored = self.module.bits_stored.unwrap_or(bits);
        if !matches!(bits, 1 | 8 | 16) || stored == 0 || stored > bits {
            return Err(ImageError::Unsupported(format!(
                "DICOM BitsAllocated {bits} with BitsStored {stored} (images of 1, 8 or 16 bits \
                 allocated, as many or fewer stored, are decoded)"
            )));
        }
        self.frames().map(|_| ())
    }

    /// Bytes one decoded frame takes (at least one byte a sample), the
    /// unit of the memory a decode reserves.
    pub fn decoded_frame_bytes(&self) -> u64 {
        let m = &self.module;
        let sample_bytes = m.bits_allocated.unwrap_or(8).div_ceil(8).max(1);
        m.rows.unwrap_or(0) * m.columns.unwrap_or(0) * m.samples.unwrap_or(1).max(1) * sample_bytes
    }

    /// Bits one stored frame takes.
    fn frame_bits(&self) -> Result<u128, ImageError> {
        let m = &self.module;
        let missing = |what: &str| {
            ImageError::Damaged(format!(
                "DICOM pixel data without its pixel module: {what} is missing"
            ))
        };
        let rows = m.rows.ok_or_else(|| missing("Rows"))?;
        let columns = m.columns.ok_or_else(|| missing("Columns"))?;
        let bits = m.bits_allocated.ok_or_else(|| missing("BitsAllocated"))?;
        let samples = m.samples.unwrap_or(1);
        if !(1..=4).contains(&samples) {
            return Err(ImageError::Unsupported(format!(
                "DICOM SamplesPerPixel {samples} (1, 3 or 4 are read)"
            )));
        }
        if !(bits == 1 || (bits % 8 == 0 && (8..=64).contains(&bits))) {
            return Err(ImageError::Unsupported(format!(
                "DICOM BitsAllocated {bits} (1 or a multiple of 8 up to 64 are read)"
            )));
        }
        // 4:2:2 subsampled YBR stores two samples a pixel.
        let stored = if m.photometric.ends_with("_422") {
            2
        } else {
            samples
        };
        Ok(u128::from(rows) * u128::from(columns) * u128::from(stored) * u128::from(bits))
    }

    fn describe_frame(&self) -> String {
        let m = &self.module;
        format!(
            "{}×{} pixels, {} sample(s) of {} bits",
            m.columns.unwrap_or(0),
            m.rows.unwrap_or(0),
            m.samples.unwrap_or(1),
            m.bits_allocated.unwrap_or(0)
        )
    }
}

impl PixelModule {
    /// An RLE frame: its header names at most 15 segments, each inside the
    /// fragment, and no segment decodes (PackBits) to more than one plane
    /// of the frame, which the decoder would otherwise grow to (64 times
    /// the segment's size).
    pub(super) fn check_rle(&self, fragment: &[u8]) -> Result<(), ImageError> {
        let bad = |what: &str| ImageError::Damaged(format!("DICOM RLE frame refused: {what}"));
        if fragment.len() < 64 {
            return Err(bad("shorter than its 64-byte header"));
        }
        let word = |i: usize| {
            u32::from_le_bytes([
                fragment[i],
                fragment[i + 1],
                fragment[i + 2],
                fragment[i + 3],
            ]) as usize
        };
        let segments = word(0);
        if segments == 0 || segments > RLE_SEGMENTS {
            return Err(bad(&format!("{segments} segments (1 to 15)")));
        }
        let plane = self.rows.unwrap_or(0) * self.columns.unwrap_or(0);
        let mut offsets: Vec<usize> = (1..=segments).map(|i| word(4 * i)).collect();
        offsets.push(fragment.len());
        for pair in offsets.windows(2) {
            let (start, stop) = (pair[0], pair[1]);
            if start < 64 || start > stop {
                return Err(bad("segment offsets out of order or outside the frame"));
            }
            if packbits_len(&fragment[start..stop]) > plane {
                return Err(bad(&format!(
                    "a segment decodes to more than the {plane} bytes of a plane"
                )));
            }
        }
        Ok(())
    }

    /// A fragment that starts a JPEG or JPEG 2000 codestream: its own
    /// size must be the pixel module's (PS3.5 8.2), since its decoder
    /// allocates by what the codestream says; JPEG 2000's components and
    /// tiles are bounded too (its decoder keeps state per tile).
    pub(super) fn check_codestream(&self, fragment: &[u8]) -> Result<(), ImageError> {
        const SOC_SIZ: [u8; 4] = [0xFF, 0x4F, 0xFF, 0x51];
        const JP2: [u8; 8] = [0, 0, 0, 0x0C, b'j', b'P', b' ', b' '];
        let size = match fragment {
            [0xFF, 0xD8, ..] => jpeg_size(fragment),
            [0xFF, 0x4F, 0xFF, 0x51, ..] => j2k_size(fragment),
            // A JP2 file (not allowed in DICOM, but a decoder may take
            // it): its codestream box holds the same header.
            _ if fragment.starts_with(&JP2) => fragment
                .windows(4)
                .position(|w| w == SOC_SIZ)
                .and_then(|at| j2k_size(&fragment[at..])),
            _ => return Ok(()),
        };
        let Some((width, height, components, tiles)) = size else {
            return Err(ImageError::Damaged(
                "DICOM compressed frame: its codestream header is cut short or damaged".into(),
            ));
        };
        let (rows, columns) = (self.rows.unwrap_or(0), self.columns.unwrap_or(0));
        if (width, height) != (columns, rows) || components > 4 || tiles > 1 << 16 {
            return Err(ImageError::Damaged(format!(
                "DICOM compressed frame of {width}×{height} pixels, {components} components and \
                 {tiles} tile(s), in an image the header says is {columns}×{rows}"
            )));
        }
        Ok(())
    }
}

/// Width, height, components and tiles (1) of a JPEG codestream, from its
/// first start-of-frame marker.
fn jpeg_size(b: &[u8]) -> Option<(u64, u64, u64, u64)> {
    let mut i = 2;
    loop {
        while *b.get(i)? == 0xFF && *b.get(i + 1)? == 0xFF {
            i += 1;
        }
        if *b.get(i)? != 0xFF {
            return None;
        }
        let marker = *b.get(i + 1)?;
        if matches!(marker, 0x01 | 0xD0..=0xD7) {
            i += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([*b.get(i + 2)?, *b.get(i + 3)?]));
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
            || marker == 0xF7;
        if is_sof {
            let at = |k: usize| b.get(i + k).copied().map(u64::from);
            let height = at(5)? << 8 | at(6)?;
            let width = at(7)? << 8 | at(8)?;
            return Some((width, height, at(9)?, 1));
        }
        if marker == 0xDA || len < 2 {
            return None;
        }
        i += 2 + len;
    }
}

/// Width, height, components and tiles of a JPEG 2000 codestream, from its
/// SIZ marker segment (which must follow the start of codestream).
fn j2k_size(b: &[u8]) -> Option<(u64, u64, u64, u64)> {
    let word = |k: usize| -> Option<u64> {
        let w = b.get(k..k + 4)?;
        Some(u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]])))
    };
    let (xsiz, ysiz, xo, yo) = (word(8)?, word(12)?, word(16)?, word(20)?);
    let (xt, yt, xto, yto) = (word(24)?, word(28)?, word(32)?, word(36)?);
    let components = u64::from(u16::from_be_bytes([*b.get(40)?, *b.get(41)?]));
    if xo > xsiz || yo > ysiz || xt == 0 || yt == 0 || xto > xo || yto > yo {
        return None;
    }
    let tiles = (xsiz - xto).div_ceil(xt) * (ysiz - yto).div_ceil(yt);
    Some((xsiz - xo, ysiz - yo, components, tiles))
}

/// Bytes a PackBits segment decodes to.
fn packbits_len(segment: &[u8]) -> u64 {
    let (mut i, mut out) = (0usize, 0u64);
    while i < segment.len() {
        let h = segment[i] as i8;
        i += 1;
        match h {
            -127..=-1 => {
                out += (1 - i64::from(h)) as u64;
                i += 1;
            }
            0..=127 => {
                out += h as u64 + 1;
                i += h as usize + 1;
            }
            _ => {}
        }
    }
    out
}
