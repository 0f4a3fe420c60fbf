//! A structural pre-scan of a DICOM Part 10 object, run before dicom-rs
//! sees a byte of it.
//!
//! dicom-rs believes what an object declares: it follows sequences as deep
//! as they nest (one stack frame a level, so a few thousand levels overflow
//! a thread's stack and abort the process), and allocates an element's
//! declared length before reading it (4 GB for a 455-byte file). The scan
//! walks the element stream the way dicom-rs will, reading only the headers
//! (tag, VR, length) and skipping values, and refuses the object when:
//!
//! - a length runs past the bytes present (the file, or the enclosing item
//!   of defined length): [`ImageError::Damaged`];
//! - sequences nest deeper than [`MAX_SEQUENCE_DEPTH`], or the object holds
//!   more than [`MAX_ELEMENTS`] elements, items and text values together:
//!   [`ImageError::OverLimit`];
//! - the pixel module (rows, columns, samples, bits, frames) asks for more
//!   pixel bytes than the pixel data holds, or more frames than its
//!   fragments, or more than [`MAX_FRAMES`] frames: the frame count used
//!   downstream is the one the bytes bear out, never the header's alone.
//!
//! A deflated data set is inflated first, at most `max_inflated` bytes of
//! it. The scan allocates nothing that grows with what the object declares:
//! memory stays small for a refused object, and dicom-rs then reads an
//! object whose every length and count has been checked.

use std::io::Read;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

use super::pixels::{PixelModule, Pixels, Scan};
use crate::ImageError;

/// Deepest nesting of sequences read (an item's sequence inside an item's
/// sequence …). Real objects nest a handful of levels (enhanced multi-frame
/// functional groups: 3, structured reports: about 10).
pub const MAX_SEQUENCE_DEPTH: usize = 32;

/// Most elements, sequence items and text values in one object. dicom-rs
/// keeps each in memory (about a hundred bytes apiece), so this bounds what
/// a small file of empty elements can cost; an enhanced OCT volume of 2,000
/// frames holds about 100,000.
pub const MAX_ELEMENTS: usize = 500_000;

/// Most frames read from one object (an OCT volume has up to a couple of
/// thousand B-scans); with `"frames": "each"` each becomes a document.
pub const MAX_FRAMES: u32 = 16_384;

const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_END: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_END: Tag = Tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
const GROUP_LENGTH: Tag = Tag(0x0002, 0x0000);
const TRANSFER_SYNTAX: Tag = Tag(0x0002, 0x0010);
const SAMPLES: Tag = Tag(0x0028, 0x0002);
const PHOTOMETRIC: Tag = Tag(0x0028, 0x0004);
const FRAMES: Tag = Tag(0x0028, 0x0008);
const ROWS: Tag = Tag(0x0028, 0x0010);
const COLUMNS: Tag = Tag(0x0028, 0x0011);
const BITS_ALLOCATED: Tag = Tag(0x0028, 0x0100);
const BITS_STORED: Tag = Tag(0x0028, 0x0101);

const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
const RLE: &str = "1.2.840.10008.1.2.5";

/// Scans a Part 10 object (preamble, `DICM`, file meta group, data set).
/// A deflated data set is inflated to at most `max_inflated` bytes.
pub(crate) fn scan(bytes: &[u8], max_inflated: u64) -> Result<Scan, ImageError> {
    if !super::is_dicom(bytes) {
        return Err(ImageError::Unsupported("not a DICOM Part 10 file".into()));
    }
    let mut meta = Walker::new(&bytes[132..], Encoding::ExplicitLe);
    meta.file_meta()?;
    let transfer_syntax = meta.transfer_syntax.take().unwrap_or_default();
    let rest = &bytes[132 + meta.pos..];
    let inflated;
    let (data, encoding) = match transfer_syntax.as_str() {
        IMPLICIT_LE => (rest, Encoding::ImplicitLe),
        EXPLICIT_BE => (rest, Encoding::ExplicitBe),
        DEFLATED => {
            inflated = inflate(rest, max_inflated)?;
            (&inflated[..], Encoding::ExplicitLe)
        }
        _ => (rest, Encoding::ExplicitLe),
    };
    let mut walker = Walker::new(data, encoding);
    walker.elements = meta.elements;
    walker.rle = transfer_syntax == RLE;
    // Frames of a syntax this build cannot decode reach no decoder; the
    // decode refuses them by name.
    walker.frames_decoded = TransferSyntaxRegistry
        .get(&transfer_syntax)
        .is_some_and(|ts| ts.can_decode_all());
    walker
        .dataset(data.len(), Closing::End, 0)
        .map_err(|e| match e {
            // Name the syntax, so a cut-short compressed object says so.
            ImageError::Damaged(m) => ImageError::Damaged(format!(
                "{m} (in a {} object)",
                syntax_name(&transfer_syntax)
            )),
            other => other,
        })?;
    Ok(Scan {
        pixels: walker.pixels,
        module: walker.module,
    })
}

/// A transfer syntax's name, or its UID when this build does not know it.
fn syntax_name(uid: &str) -> String {
    TransferSyntaxRegistry
        .get(uid)
        .map_or_else(|| uid.to_string(), |ts| ts.name().to_string())
}

/// A raw-deflated data set, inflated to at most `max` bytes.
fn inflate(bytes: &[u8], max: u64) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(bytes)
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| ImageError::Damaged(format!("DICOM deflated data set is corrupt: {e}")))?;
    if out.len() as u64 > max {
        return Err(ImageError::OverLimit(format!(
            "DICOM deflated data set inflates past {max} bytes"
        )));
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    ImplicitLe,
    ExplicitLe,
    ExplicitBe,
}

/// How a data set ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// At the end of its bytes (the file, or an item of defined length).
    End,
    /// At an item delimiter (an item of undefined length).
    ItemDelimiter,
}

/// One element's header: its tag, VR (explicit encodings) and length.
struct Header {
    tag: Tag,
    vr: Option<VR>,
    len: u32,
}

struct Walker<'a> {
    data: &'a [u8],
    pos: usize,
    encoding: Encoding,
    elements: usize,
    transfer_syntax: Option<String>,
    /// Whether fragments are RLE frames, whose headers are checked too.
    rle: bool,
    /// Whether this build decodes the frames (so their headers matter).
    frames_decoded: bool,
    pixels: Option<Pixels>,
    module: PixelModule,
}

fn damaged(what: impl std::fmt::Display) -> ImageError {
    ImageError::Damaged(format!("DICOM structure refused: {what}"))
}

impl<'a> Walker<'a> {
    fn new(data: &'a [u8], encoding: Encoding) -> Self {
        Self {
            data,
            pos: 0,
            encoding,
            elements: 0,
            transfer_syntax: None,
            rle: false,
            frames_decoded: false,
            pixels: None,
            module: PixelModule::default(),
        }
    }

    /// Where `n` bytes from here end, if the container (ending at `end`)
    /// holds them.
    fn span(&self, n: u64, end: usize) -> Result<usize, ImageError> {
        let left = end - self.pos;
        if n > left as u64 {
            return Err(damaged(format!(
                "at byte {} a length of {n} runs past the {left} bytes that remain",
                self.pos
            )));
        }
        Ok(self.pos + n as usize)
    }

    /// The next `n` bytes, if the container (ending at `end`) holds them.
    fn take(&mut self, n: u64, end: usize) -> Result<&'a [u8], ImageError> {
        let to = self.span(n, end)?;
        let slice = &self.data[self.pos..to];
        self.pos = to;
        Ok(slice)
    }

    fn u16(&mut self, end: usize) -> Result<u16, ImageError> {
        let b = self.take(2, end)?;
        Ok(match self.encoding {
            Encoding::ExplicitBe => u16::from_be_bytes([b[0], b[1]]),
            _ => u16::from_le_bytes([b[0], b[1]]),
        })
    }

    fn u32(&mut self, end: usize) -> Result<u32, ImageError> {
        let b = self.take(4, end)?;
        let b = [b[0], b[1], b[2], b[3]];
        Ok(match self.encoding {
            Encoding::ExplicitBe => u32::from_be_bytes(b),
            _ => u32::from_le_bytes(b),
        })
    }

    fn count(&mut self, n: usize) -> Result<(), ImageError> {
        self.elements += n;
        if self.elements > MAX_ELEMENTS {
            return Err(ImageError::OverLimit(format!(
                "DICOM object holds more than {MAX_ELEMENTS} elements, items and values"
            )));
        }
        Ok(())
    }

    fn header(&mut self, end: usize) -> Result<Header, ImageError> {
        let tag = Tag(self.u16(end)?, self.u16(end)?);
        self.count(1)?;
        if tag.0 == 0xFFFE || self.encoding == Encoding::ImplicitLe {
            let len = self.u32(end)?;
            return Ok(Header { tag, vr: None, len });
        }
        let code = self.take(2, end)?;
        let vr = VR::from_binary([code[0], code[1]]).ok_or_else(|| {
            damaged(format!(
                "element {tag} has an unknown VR {:?}",
                String::from_utf8_lossy(code)
            ))
        })?;
        let len = if long_length(vr) {
            self.take(2, end)?;
            self.u32(end)?
        } else {
            u32::from(self.u16(end)?)
        };
        Ok(Header {
            tag,
            vr: Some(vr),
            len,
        })
    }

    /// The file meta group: explicit VR little endian, group 0002.
    fn file_meta(&mut self) -> Result<(), ImageError> {
        let end = self.data.len();
        while end - self.pos >= 2 && self.data[self.pos..self.pos + 2] == [0x02, 0x00] {
            let h = self.header(end)?;
            if h.len == UNDEFINED {
                return Err(damaged(format!(
                    "file meta element {} has no length",
                    h.tag
                )));
            }
            let value = self.take(u64::from(h.len), end)?;
            if h.tag == GROUP_LENGTH && value.len() == 4 {
                let group = u32::from_le_bytes([value[0], value[1], value[2], value[3]]);
                self.span(u64::from(group), end)?;
            }
            if h.tag == TRANSFER_SYNTAX {
                self.transfer_syntax = Some(text(value));
            }
        }
        if self.transfer_syntax.is_none() {
            return Err(damaged("the file meta group names no transfer syntax"));
        }
        Ok(())
    }

    /// The elements of a data set ending as `closing` says, within `end`.
    fn dataset(&mut self, end: usize, closing: Closing, depth: usize) -> Result<(), ImageError> {
        loop {
            if self.pos == end {
                return match closing {
                    Closing::End => Ok(()),
                    Closing::ItemDelimiter => {
                        Err(damaged("an item of undefined length is not closed"))
                    }
                };
            }
            let h = self.header(end)?;
            if h.tag == ITEM_END && closing == Closing::ItemDelimiter {
                return Ok(());
            }
            if h.tag.0 == 0xFFFE {
                return Err(damaged(format!("{} stands outside a sequence", h.tag)));
            }
            let undefined = h.len == UNDEFINED;
            if h.tag == PIXEL_DATA && undefined {
                // Only the top level's frames are decoded, and only they
                // are held to its pixel module (an icon's are not).
                let fragments = self.fragments(end, depth == 0)?;
                if depth == 0 {
                    self.pixels = Some(Pixels::Encapsulated(fragments));
                }
                continue;
            }
            let vr = h.vr.or_else(|| dictionary_vr(h.tag));
            if undefined || vr == Some(VR::SQ) {
                if undefined && !matches!(h.vr, None | Some(VR::SQ) | Some(VR::UN)) {
                    return Err(damaged(format!(
                        "element {} of VR {} has an undefined length",
                        h.tag,
                        h.vr.map_or("?", |v| v.to_string())
                    )));
                }
                if depth + 1 > MAX_SEQUENCE_DEPTH {
                    return Err(ImageError::OverLimit(format!(
                        "DICOM sequences nest deeper than {MAX_SEQUENCE_DEPTH} levels"
                    )));
                }
                // A sequence of VR UN and undefined length is implicit VR
                // little endian inside (PS3.5 6.2.2).
                let outer = self.encoding;
                if h.vr == Some(VR::UN) {
                    self.encoding = Encoding::ImplicitLe;
                }
                let len = (!undefined).then_some(h.len);
                let walked = self.sequence(end, len, depth + 1);
                self.encoding = outer;
                walked?;
                continue;
            }
            let value = self.take(u64::from(h.len), end)?;
            if let Some(vr) = vr {
                if is_multi_valued_text(vr) {
                    let values = value.iter().filter(|&&b| b == b'\\').count();
                    self.count(values)?;
                }
            }
            if depth == 0 {
                self.note(h.tag, value)?;
            }
        }
    }

    /// The items of a sequence (of defined length `len`, else up to its
    /// delimiter), within `end`.
    fn sequence(&mut self, end: usize, len: Option<u32>, depth: usize) -> Result<(), ImageError> {
        let end = match len {
            Some(len) => self.span(u64::from(len), end)?,
            None => end,
        };
        loop {
            if len.is_some() && self.pos == end {
                return Ok(());
            }
            let h = self.header(end)?;
            match h.tag {
                SEQUENCE_END if len.is_none() => return Ok(()),
                ITEM if h.len == UNDEFINED => self.dataset(end, Closing::ItemDelimiter, depth)?,
                ITEM => {
                    let item_end = self.span(u64::from(h.len), end)?;
                    self.dataset(item_end, Closing::End, depth)?;
                }
                other => {
                    return Err(damaged(format!(
                        "a sequence holds {other} where an item belongs"
                    )))
                }
            }
        }
    }

    /// The fragments of encapsulated pixel data; returns how many, less
    /// the offset table.
    fn fragments(&mut self, end: usize, top_level: bool) -> Result<u64, ImageError> {
        let mut items = 0u64;
        loop {
            let h = self.header(end)?;
            match h.tag {
                SEQUENCE_END => return Ok(items.saturating_sub(1)),
                ITEM if h.len != UNDEFINED => {
                    let fragment = self.take(u64::from(h.len), end)?;
                    if top_level && self.frames_decoded && items > 0 {
                        if self.rle {
                            self.module.check_rle(fragment)?;
                        } else {
                            self.module.check_codestream(fragment)?;
                        }
                    }
                    items += 1;
                }
                other => {
                    return Err(damaged(format!(
                        "encapsulated pixel data holds {other} where a fragment belongs"
                    )))
                }
            }
        }
    }

    /// Keeps the top-level values the checks need.
    fn note(&mut self, tag: Tag, value: &[u8]) -> Result<(), ImageError> {
        let number = |value: &[u8]| -> Option<u64> {
            let b = value.get(..2)?;
            Some(u64::from(match self.encoding {
                Encoding::ExplicitBe => u16::from_be_bytes([b[0], b[1]]),
                _ => u16::from_le_bytes([b[0], b[1]]),
            }))
        };
        match tag {
            ROWS => self.module.rows = number(value),
            COLUMNS => self.module.columns = number(value),
            SAMPLES => self.module.samples = number(value),
            BITS_ALLOCATED => self.module.bits_allocated = number(value),
            BITS_STORED => self.module.bits_stored = number(value),
            PHOTOMETRIC => self.module.photometric = text(value),
            FRAMES => {
                let t = text(value);
                let first = t.split('\\').next().unwrap_or_default().trim();
                if !first.is_empty() {
                    let n = first.parse::<i64>().map_err(|_| {
                        damaged(format!("NumberOfFrames {first:?} is not a number"))
                    })?;
                    self.module.frames = Some(n.max(0) as u64);
                }
            }
            PIXEL_DATA => self.pixels = Some(Pixels::Native(value.len() as u64)),
            _ => {}
        }
        Ok(())
    }
}

/// VRs whose length takes 4 bytes in explicit encodings (PS3.5 7.1.2).
fn long_length(vr: VR) -> bool {
    use VR::*;
    matches!(
        vr,
        OB | OD | OF | OL | OV | OW | SQ | SV | UC | UN | UR | UT | UV
    )
}

/// Text VRs whose values are separated by `\` (each becomes a string).
fn is_multi_valued_text(vr: VR) -> bool {
    use VR::*;
    matches!(
        vr,
        AE | AS | CS | DA | DS | DT | IS | LO | PN | SH | TM | UC | UI
    )
}

/// The VR the standard dictionary gives a tag (implicit VR data sets).
fn dictionary_vr(tag: Tag) -> Option<VR> {
    let entry = dicom_dictionary_std::StandardDataDictionary.by_tag(tag)?;
    Some(entry.vr().relaxed())
}

fn text(value: &[u8]) -> String {
    String::from_utf8_lossy(value)
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .to_string()
}
