//! Structural checks that the image decoders leave out.
//!
//! The JPEG decoder fills in whatever a truncated file lacks and the PNG
//! decoder stops once it has the pixels, so a photograph cut short (a
//! failed copy, a partial upload) would decode into a half-grey picture and
//! be encoded as if it were whole. Before decoding, a JPEG's segments are
//! walked to its end-of-image marker and a PNG's chunks are walked to
//! `IEND` with each chunk's CRC checked. Both are one pass over bytes
//! already in memory, small beside the decode.

use image::ImageFormat;

use crate::ImageError;

/// Refuses a file whose structure is cut short or damaged, with the reason.
pub(crate) fn check(format: ImageFormat, bytes: &[u8]) -> Result<(), ImageError> {
    match format {
        ImageFormat::Png => check_png(bytes),
        ImageFormat::Jpeg => check_jpeg(bytes),
        _ => Ok(()),
    }
}

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

fn check_png(bytes: &[u8]) -> Result<(), ImageError> {
    if !bytes.starts_with(&PNG_SIGNATURE) {
        return Err(ImageError::Damaged(
            "corrupt PNG file: bad signature".into(),
        ));
    }
    let mut pos = PNG_SIGNATURE.len();
    loop {
        let Some(header) = bytes.get(pos..pos + 8) else {
            return Err(ImageError::Damaged(
                "truncated PNG file: it ends before its IEND chunk".into(),
            ));
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = &header[4..8];
        let name = String::from_utf8_lossy(kind).into_owned();
        let Some(end) = (pos + 8).checked_add(len).and_then(|e| e.checked_add(4)) else {
            return Err(ImageError::Damaged(format!(
                "corrupt PNG file: chunk {name:?} claims {len} bytes"
            )));
        };
        if end > bytes.len() {
            return Err(ImageError::Damaged(format!(
                "truncated PNG file: it ends inside chunk {name:?} at byte {pos}"
            )));
        }
        let body = &bytes[pos + 4..end - 4];
        let stored = u32::from_be_bytes(bytes[end - 4..end].try_into().expect("4 bytes"));
        if crc32fast::hash(body) != stored {
            return Err(ImageError::Damaged(format!(
                "corrupt PNG file: chunk {name:?} at byte {pos} fails its CRC"
            )));
        }
        if kind == b"IEND" {
            return Ok(());
        }
        pos = end;
    }
}

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;

fn check_jpeg(bytes: &[u8]) -> Result<(), ImageError> {
    let truncated = || {
        Err(ImageError::Damaged(
            "truncated JPEG file: no end-of-image marker (the file is cut short)".into(),
        ))
    };
    if bytes.len() < 2 || bytes[0] != 0xFF || bytes[1] != SOI {
        return Err(ImageError::Damaged(
            "corrupt JPEG file: no start-of-image marker".into(),
        ));
    }
    let mut pos = 2;
    loop {
        // The next marker: 0xFF (any fill bytes) then its code. Stray bytes
        // between segments are skipped, as libjpeg does.
        let Some(ff) = bytes[pos..].iter().position(|&b| b == 0xFF) else {
            return truncated();
        };
        pos += ff;
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&marker) = bytes.get(pos) else {
            return truncated();
        };
        pos += 1;
        match marker {
            EOI => return Ok(()),
            // Standalone markers: no length follows.
            0x00 | 0x01 | 0xD0..=0xD7 | SOI => continue,
            _ => {}
        }
        let Some(len) = bytes.get(pos..pos + 2) else {
            return truncated();
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if len < 2 {
            return Err(ImageError::Damaged(format!(
                "corrupt JPEG file: marker 0xFF{marker:02X} at byte {} has length {len}",
                pos - 2
            )));
        }
        pos += len;
        if pos > bytes.len() {
            return truncated();
        }
        if marker == SOS {
            // Entropy-coded data runs to the next marker that is neither a
            // stuffed zero nor a restart marker.
            loop {
                let Some(ff) = bytes[pos..].iter().position(|&b| b == 0xFF) else {
                    return truncated();
                };
                pos += ff;
                match bytes.get(pos + 1) {
                    None => return truncated(),
                    Some(0x00 | 0xD0..=0xD7 | 0xFF) => pos += 1,
                    Some(_) => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn encoded(format: ImageFormat) -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 90]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), format)
            .unwrap();
        out
    }

    #[test]
    fn a_jpeg_cut_after_its_first_marker_is_truncated() {
        let refused = check(ImageFormat::Jpeg, &[0xFF, 0xD8, 0xFF, 0xDB, 0x00]);
        assert!(matches!(refused, Err(ImageError::Damaged(m)) if m.contains("truncated JPEG")));
    }

    #[test]
    fn whole_files_pass() {
        for f in [ImageFormat::Png, ImageFormat::Jpeg] {
            check(f, &encoded(f)).unwrap();
        }
        let mut with_trailer = encoded(ImageFormat::Jpeg);
        with_trailer.extend_from_slice(&[0; 100]);
        check(ImageFormat::Jpeg, &with_trailer).unwrap();
    }

    #[test]
    fn every_cut_of_a_jpeg_is_refused() {
        let jpeg = encoded(ImageFormat::Jpeg);
        for cut in 0..jpeg.len() - 1 {
            let e = check(ImageFormat::Jpeg, &jpeg[..cut])
                .unwrap_err()
                .to_string();
            assert!(e.contains("JPEG"), "{cut}: {e}");
        }
    }

    #[test]
    fn every_cut_of_a_png_and_a_flipped_bit_are_refused() {
        let png = encoded(ImageFormat::Png);
        for cut in 0..png.len() - 1 {
            assert!(check(ImageFormat::Png, &png[..cut]).is_err(), "{cut}");
        }
        let mut bad = png.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x10;
        assert!(check(ImageFormat::Png, &bad)
            .unwrap_err()
            .to_string()
            .contains("CRC"));
        // Missing IEND: the 12-byte IEND chunk cut off.
        let no_iend = &png[..png.len() - 12];
        assert!(check(ImageFormat::Png, no_iend)
            .unwrap_err()
            .to_string()
            .contains("IEND"));
    }
}
