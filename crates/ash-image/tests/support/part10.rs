//! DICOM Part 10 objects written byte by byte, so tests can make exactly
//! the structure they need: valid seeds, and the hostile shapes (deep
//! nesting, lying lengths, frame counts) that no writer library produces.
#![allow(dead_code)]

/// Explicit VR little endian.
pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
/// Implicit VR little endian.
pub const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
/// Explicit VR big endian (retired, still read).
pub const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
/// Deflated explicit VR little endian.
pub const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
/// RLE lossless.
pub const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";
/// JPEG baseline (process 1).
pub const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";

/// Secondary capture image storage.
const SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.7";

/// VRs whose length takes 4 bytes in explicit encodings.
fn long(vr: &[u8; 2]) -> bool {
    matches!(
        vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

/// Even-length value (text padded with a space, binary with a NUL).
fn padded(vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut v = value.to_vec();
    if v.len() % 2 == 1 {
        v.push(if matches!(vr, b"OB" | b"UI" | b"UN") {
            0
        } else {
            b' '
        });
    }
    v
}

/// One explicit VR little endian element.
pub fn el(group: u16, element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let value = padded(vr, value);
    let mut out = Vec::new();
    out.extend(group.to_le_bytes());
    out.extend(element.to_le_bytes());
    out.extend(vr);
    if long(vr) {
        out.extend([0, 0]);
        out.extend((value.len() as u32).to_le_bytes());
    } else {
        out.extend((value.len() as u16).to_le_bytes());
    }
    out.extend(value);
    out
}

/// One implicit VR little endian element.
pub fn el_implicit(group: u16, element: u16, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(group.to_le_bytes());
    out.extend(element.to_le_bytes());
    out.extend((value.len() as u32).to_le_bytes());
    out.extend(value);
    out
}

/// An element header with any 32-bit length and no value (a lie to test).
pub fn el_claiming(group: u16, element: u16, vr: &[u8; 2], len: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(group.to_le_bytes());
    out.extend(element.to_le_bytes());
    out.extend(vr);
    out.extend([0, 0]);
    out.extend(len.to_le_bytes());
    out
}

/// A US value.
pub fn us(group: u16, element: u16, v: u16) -> Vec<u8> {
    el(group, element, b"US", &v.to_le_bytes())
}

/// An item or delimiter tag with its 32-bit length.
pub fn item_tag(element: u16, len: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(0xFFFEu16.to_le_bytes());
    out.extend(element.to_le_bytes());
    out.extend(len.to_le_bytes());
    out
}

/// `depth` sequences of undefined length, each the only element of the
/// one item of the sequence around it, innermost holding `inner`.
pub fn nested(depth: usize, inner: &[u8]) -> Vec<u8> {
    let mut head = Vec::new();
    for _ in 0..depth {
        head.extend(el_claiming(0x0040, 0xA730, b"SQ", u32::MAX));
        head.extend(item_tag(0xE000, u32::MAX));
    }
    head.extend(inner);
    for _ in 0..depth {
        head.extend(item_tag(0xE00D, 0));
        head.extend(item_tag(0xE0DD, 0));
    }
    head
}

/// Preamble, `DICM`, the file meta group naming `ts`, then `dataset`.
pub fn object(ts: &str, dataset: &[u8]) -> Vec<u8> {
    let mut meta = Vec::new();
    meta.extend(el(0x0002, 0x0001, b"OB", &[0, 1]));
    meta.extend(el(0x0002, 0x0002, b"UI", SOP_CLASS.as_bytes()));
    meta.extend(el(0x0002, 0x0003, b"UI", b"1.2.826.0.1.3680043.10.999.1"));
    meta.extend(el(0x0002, 0x0010, b"UI", ts.as_bytes()));
    meta.extend(el(0x0002, 0x0012, b"UI", b"1.2.826.0.1.3680043.10.999"));
    let mut out = vec![0u8; 128];
    out.extend(b"DICM");
    out.extend(el(
        0x0002,
        0x0000,
        b"UL",
        &(meta.len() as u32).to_le_bytes(),
    ));
    out.extend(meta);
    out.extend(dataset);
    out
}

/// The identifying elements every test object carries (ascending tags
/// up to the patient module).
pub fn identity(uid: &str) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(el(0x0008, 0x0016, b"UI", SOP_CLASS.as_bytes()));
    out.extend(el(0x0008, 0x0018, b"UI", uid.as_bytes()));
    out.extend(el(0x0008, 0x0060, b"CS", b"OP"));
    out.extend(el(0x0010, 0x0020, b"LO", b"P-1"));
    out
}

/// The image pixel module of a native image.
pub fn pixel_module(
    rows: u16,
    columns: u16,
    samples: u16,
    bits: u16,
    frames: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(us(0x0028, 0x0002, samples));
    let photometric: &[u8] = if samples == 3 { b"RGB" } else { b"MONOCHROME2" };
    out.extend(el(0x0028, 0x0004, b"CS", photometric));
    if let Some(frames) = frames {
        out.extend(el(0x0028, 0x0008, b"IS", frames.as_bytes()));
    }
    out.extend(us(0x0028, 0x0010, rows));
    out.extend(us(0x0028, 0x0011, columns));
    out.extend(us(0x0028, 0x0100, bits));
    out.extend(us(0x0028, 0x0101, bits));
    out.extend(us(0x0028, 0x0102, bits - 1));
    out.extend(us(0x0028, 0x0103, 0));
    if samples == 3 {
        out.extend(us(0x0028, 0x0006, 0));
    }
    out
}

/// A native image of `frames` frames whose pixels are a gradient.
pub fn native_image(
    uid: &str,
    rows: u16,
    columns: u16,
    samples: u16,
    bits: u16,
    frames: u32,
) -> Vec<u8> {
    let mut data = identity(uid);
    let declared = (frames > 1).then(|| frames.to_string());
    data.extend(pixel_module(
        rows,
        columns,
        samples,
        bits,
        declared.as_deref(),
    ));
    let n =
        rows as usize * columns as usize * samples as usize * (bits as usize / 8) * frames as usize;
    let pixels: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
    data.extend(el(
        0x7FE0,
        0x0010,
        if bits > 8 { b"OW" } else { b"OB" },
        &pixels,
    ));
    object(EXPLICIT_LE, &data)
}

/// An 8-bit RGB JPEG baseline object holding `jpeg` (one frame).
pub fn jpeg_image(uid: &str, rows: u16, columns: u16, jpeg: &[u8]) -> Vec<u8> {
    let mut data = identity(uid);
    data.extend(us(0x0028, 0x0002, 3));
    data.extend(el(0x0028, 0x0004, b"CS", b"YBR_FULL_422"));
    data.extend(us(0x0028, 0x0006, 0));
    data.extend(us(0x0028, 0x0010, rows));
    data.extend(us(0x0028, 0x0011, columns));
    data.extend(us(0x0028, 0x0100, 8));
    data.extend(us(0x0028, 0x0101, 8));
    data.extend(us(0x0028, 0x0102, 7));
    data.extend(us(0x0028, 0x0103, 0));
    data.extend(el_claiming(0x7FE0, 0x0010, b"OB", u32::MAX));
    data.extend(item_tag(0xE000, 0));
    let fragment = padded(b"OB", jpeg);
    data.extend(item_tag(0xE000, fragment.len() as u32));
    data.extend(fragment);
    data.extend(item_tag(0xE0DD, 0));
    object(JPEG_BASELINE, &data)
}

/// An 8-bit monochrome RLE lossless object (one frame, one segment of
/// PackBits literal runs, a row each).
pub fn rle_image(uid: &str, rows: u16, columns: u16) -> Vec<u8> {
    let mut frame = vec![0u8; 64];
    frame[0] = 1;
    frame[4] = 64;
    for r in 0..rows {
        let mut left = columns as usize;
        while left > 0 {
            let run = left.min(128);
            frame.push((run - 1) as u8);
            frame.extend((0..run).map(|c| (c as u16 * 3 + r * 5) as u8));
            left -= run;
        }
    }
    let fragment = padded(b"OB", &frame);
    let mut data = identity(uid);
    data.extend(pixel_module(rows, columns, 1, 8, None));
    data.extend(el_claiming(0x7FE0, 0x0010, b"OB", u32::MAX));
    data.extend(item_tag(0xE000, 0));
    data.extend(item_tag(0xE000, fragment.len() as u32));
    data.extend(fragment);
    data.extend(item_tag(0xE0DD, 0));
    object(RLE_LOSSLESS, &data)
}
