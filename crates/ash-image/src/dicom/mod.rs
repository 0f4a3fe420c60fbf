//! DICOM Part 10 files as images, through dicom-rs (pure Rust codecs).
//!
//! A file is DICOM when `DICM` stands at byte 128 (the Part 10 preamble),
//! whatever its name: PACS exports often have no extension. The header is
//! parsed up to the pixel data ([`DicomHeader`]) for the attributes an
//! index maps to its fields; [`crate::decode_frame`] then reads the whole object and
//! decodes one frame: native (implicit and explicit VR little endian,
//! explicit big endian, deflated), JPEG baseline, extended and lossless,
//! JPEG 2000 and RLE; RGB, YBR and monochrome; 8 and 16 bits. The modality
//! and VOI LUTs (window centre and width) are applied as a viewer would, so
//! a 16-bit image becomes what a grader sees; an 8-bit RGB image is passed
//! through unchanged, so its code equals that of the same picture as PNG.
//! An 8-bit JPEG baseline frame is decoded as a JPEG file would be, so a
//! photograph wrapped in DICOM (`img2dcm`) gets the photograph's own code.
//! What cannot be decoded is refused with its reason: no pixel data (and
//! the SOP class), a transfer syntax this build lacks (named), a frame that
//! is truncated or corrupt, a frame number past the last.

use std::io::Cursor;

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_pixeldata::{ConvertOptions, PixelDecoder};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use image::DynamicImage;

use crate::{ImageError, ImageLimits};

mod pixels;
mod scan;

pub use scan::{MAX_ELEMENTS, MAX_FRAMES, MAX_SEQUENCE_DEPTH};

/// Whether `bytes` start like a DICOM Part 10 file (`DICM` at byte 128).
///
/// ```
/// let mut file = vec![0u8; 128];
/// file.extend_from_slice(b"DICM");
/// assert!(ash_image::dicom::is_dicom(&file));
/// assert!(!ash_image::dicom::is_dicom(b"\x89PNG\r\n\x1a\n"));
/// ```
pub fn is_dicom(bytes: &[u8]) -> bool {
    bytes.len() >= 132 && &bytes[128..132] == b"DICM"
}

/// Whether `keyword` names an attribute of the standard DICOM dictionary.
///
/// ```
/// assert!(ash_image::dicom::is_keyword("ImageLaterality"));
/// assert!(!ash_image::dicom::is_keyword("PatientNickname"));
/// ```
pub fn is_keyword(keyword: &str) -> bool {
    use dicom_core::dictionary::DataDictionary;
    dicom_dictionary_std::StandardDataDictionary
        .by_name(keyword)
        .is_some()
}

/// The tag of a standard attribute keyword as DICOM JSON writes it
/// (`GGGGEEEE`, upper-case hex), e.g. to ask a DICOMweb server for it.
///
/// ```
/// assert_eq!(ash_image::dicom::tag_hex("SOPInstanceUID").as_deref(), Some("00080018"));
/// assert_eq!(ash_image::dicom::tag_hex("NoSuchKeyword"), None);
/// ```
pub fn tag_hex(keyword: &str) -> Option<String> {
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
    let entry = dicom_dictionary_std::StandardDataDictionary.by_name(keyword)?;
    match entry.tag_range() {
        dicom_core::dictionary::TagRange::Single(tag) => {
            Some(format!("{:04X}{:04X}", tag.group(), tag.element()))
        }
        _ => None,
    }
}

/// The header of a DICOM file: everything before its pixel data, and the
/// number of frames its pixel data holds.
pub struct DicomHeader {
    object: DefaultDicomObject,
    frames: u32,
}

impl DicomHeader {
    /// Parses the file meta group and the data set up to the pixel data,
    /// once the whole object's structure is checked (see the module docs):
    /// a truncated or inconsistent object has no header to use.
    pub fn read(bytes: &[u8]) -> Result<Self, ImageError> {
        let scanned = scan::scan(bytes, ImageLimits::default().max_file_bytes)?;
        let frames = scanned.frames()?;
        Ok(Self {
            object: open(bytes, true)?,
            frames,
        })
    }

    /// Reads a file (a regular file, at most `limit` bytes: see
    /// [`crate::untrusted`]) and parses its header as [`DicomHeader::read`].
    pub fn open(path: &std::path::Path, limit: u64) -> Result<Self, ImageError> {
        Self::read(&crate::untrusted::read_capped(path, limit)?)
    }

    /// An attribute's value as text, by its DICOM keyword (`PatientID`,
    /// `ImageLaterality`, …); multiple values are joined with `\`; `None`
    /// when absent, empty or not text-like (sequences, binary values).
    pub fn value(&self, keyword: &str) -> Option<String> {
        let element = self.object.element_by_name_opt(keyword).ok()??;
        let text = element.to_str().ok()?;
        let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        (!text.is_empty()).then(|| text.to_string())
    }

    /// The SOP Instance UID: a DICOM object's identity.
    pub fn sop_instance_uid(&self) -> Option<String> {
        self.value("SOPInstanceUID")
    }

    /// The SOP class (what kind of object this is).
    pub fn sop_class_uid(&self) -> String {
        clean(self.object.meta().media_storage_sop_class_uid())
    }

    /// The transfer syntax UID.
    pub fn transfer_syntax(&self) -> String {
        clean(self.object.meta().transfer_syntax())
    }

    /// Frames in the pixel data: `NumberOfFrames` (1 when absent), checked
    /// against the pixel data present.
    pub fn frames(&self) -> u32 {
        self.frames
    }
}

/// Bytes one decoded frame of a DICOM object takes, once its structure
/// and declared size are checked against `limits`: what a caller reserves
/// before decoding.
pub(crate) fn decoded_frame_bytes(bytes: &[u8], limits: &ImageLimits) -> Result<u64, ImageError> {
    let scanned = scan::scan(bytes, limits.max_file_bytes)?;
    scanned.check_limits(limits)?;
    Ok(scanned.decoded_frame_bytes())
}

/// Decodes frame `frame` (from 0) of a DICOM file, within `limits`.
pub(crate) fn decode(
    bytes: &[u8],
    limits: &ImageLimits,
    frame: u32,
) -> Result<DynamicImage, ImageError> {
    let scanned = scan::scan(bytes, limits.max_file_bytes)?;
    let object = open(bytes, false)?;
    let header = DicomHeader { object, frames: 1 };
    let ts_uid = header.transfer_syntax();
    let ts = TransferSyntaxRegistry.get(&ts_uid).ok_or_else(|| {
        ImageError::Unsupported(format!("DICOM transfer syntax {ts_uid} is not known"))
    })?;
    if !ts.can_decode_all() {
        return Err(ImageError::Unsupported(format!(
            "DICOM transfer syntax {} ({ts_uid}) cannot be decoded by this build \
             (native, JPEG baseline/extended/lossless, JPEG 2000 and RLE can)",
            ts.name()
        )));
    }
    let object = header.object;
    if object
        .element_opt(tags::PIXEL_DATA)
        .ok()
        .flatten()
        .is_none()
    {
        let class = clean(object.meta().media_storage_sop_class_uid());
        return Err(ImageError::Unsupported(format!(
            "DICOM object has no pixel data (SOP class {class}{}): not an image",
            sop_class_name(&class)
                .map(|n| format!(", {n}"))
                .unwrap_or_default()
        )));
    }
    scanned.check_limits(limits)?;
    let frames = scanned.frames()?;
    if frame >= frames {
        return Err(ImageError::Unsupported(format!(
            "DICOM frame {} asked for; the object has {frames}",
            frame + 1
        )));
    }
    if let Some(jpeg) = baseline_jpeg_frame(&object, &ts_uid, frame, frames) {
        return crate::decode(&jpeg, limits);
    }
    let decoded = object.decode_pixel_data_frame(frame).map_err(|e| {
        ImageError::Damaged(format!(
            "DICOM frame {} cannot be decoded ({}): {}",
            frame + 1,
            ts.name(),
            chain(&e)
        ))
    })?;
    decoded
        .to_dynamic_image_with_options(0, &ConvertOptions::default())
        .map_err(|e| {
            ImageError::Damaged(format!(
                "DICOM frame {} cannot be converted: {}",
                frame + 1,
                chain(&e)
            ))
        })
}

/// JPEG baseline and extended (8-bit) transfer syntaxes.
const JPEG_8BIT: [&str; 2] = ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"];

/// The frame's JPEG bytes, for an 8-bit JPEG baseline object: these are
/// decoded like a JPEG file (the same decoder and integrity check), so a
/// photograph wrapped in DICOM gets the code of the photograph itself.
/// `None` (dicom-pixeldata decodes) for other syntaxes and depths, and when
/// the fragments cannot be told apart per frame.
fn baseline_jpeg_frame(
    object: &DefaultDicomObject,
    ts_uid: &str,
    frame: u32,
    frames: u32,
) -> Option<Vec<u8>> {
    if !JPEG_8BIT.contains(&ts_uid) {
        return None;
    }
    let bits = object
        .element_opt(tags::BITS_ALLOCATED)
        .ok()??
        .to_int::<u16>()
        .ok()?;
    if bits != 8 {
        return None;
    }
    let fragments = object
        .element_opt(tags::PIXEL_DATA)
        .ok()??
        .value()
        .fragments()?;
    match (frames, fragments.len()) {
        (1, _) => Some(fragments.concat()),
        (n, m) if n as usize == m => Some(fragments[frame as usize].clone()),
        _ => None,
    }
}

/// An error and its sources, because dicom-rs puts the reason in the source.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn open(bytes: &[u8], header_only: bool) -> Result<DefaultDicomObject, ImageError> {
    if !is_dicom(bytes) {
        return Err(ImageError::Unsupported("not a DICOM Part 10 file".into()));
    }
    let mut options =
        OpenFileOptions::new().read_preamble(dicom_object::file::ReadPreamble::Always);
    if header_only {
        options = options.read_until(tags::PIXEL_DATA);
    }
    options
        .from_reader(Cursor::new(bytes))
        .map_err(|e| ImageError::Damaged(format!("not a readable DICOM file: {e}")))
}

fn clean(uid: &str) -> String {
    uid.trim_end_matches(['\0', ' ']).to_string()
}

/// Names of SOP classes that hold no image but are often found beside
/// images, for a clearer refusal.
fn sop_class_name(uid: &str) -> Option<&'static str> {
    Some(match uid {
        "1.2.840.10008.5.1.4.1.1.104.1" => "Encapsulated PDF",
        "1.2.840.10008.5.1.4.1.1.88.11" => "Basic Text SR",
        "1.2.840.10008.5.1.4.1.1.88.22" => "Enhanced SR",
        "1.2.840.10008.5.1.4.1.1.88.33" => "Comprehensive SR",
        "1.2.840.10008.5.1.4.1.1.11.1" => "Grayscale Softcopy Presentation State",
        "1.2.840.10008.5.1.4.1.1.66" => "Raw Data",
        "1.2.840.10008.5.1.4.1.1.78.1" => "Lensometry Measurements",
        "1.2.840.10008.5.1.4.1.1.79.1" => "Visual Acuity Measurements",
        "1.2.840.10008.5.1.4.1.1.80.1" => "Ophthalmic Visual Field Static Perimetry Measurements",
        _ => return None,
    })
}
