//! Hostile DICOM objects, class by class: each is refused with its reason,
//! quickly and without the allocation or recursion it asks for, while the
//! valid objects beside them still decode.

#[path = "support/part10.rs"]
mod part10;

use ash_image::dicom::{DicomHeader, MAX_SEQUENCE_DEPTH};
use ash_image::{decode_frame, decoded_bytes, ImageError, ImageLimits};
use part10::*;

fn limits() -> ImageLimits {
    ImageLimits::default()
}

#[test]
fn valid_objects_decode_in_every_encoding_they_come_in() {
    let grey = native_image("1.2.3.1", 16, 12, 1, 8, 1);
    let image = decode_frame(&grey, &limits(), 0).unwrap();
    assert_eq!((image.width(), image.height()), (12, 16));
    let rgb = native_image("1.2.3.2", 8, 8, 3, 8, 1);
    assert_eq!(decode_frame(&rgb, &limits(), 0).unwrap().width(), 8);
    let wide = native_image("1.2.3.3", 8, 8, 1, 16, 1);
    assert_eq!(decode_frame(&wide, &limits(), 0).unwrap().height(), 8);
    let frames = native_image("1.2.3.4", 4, 4, 1, 8, 3);
    assert_eq!(DicomHeader::read(&frames).unwrap().frames(), 3);
    assert!(decode_frame(&frames, &limits(), 2).is_ok());
    assert!(decode_frame(&frames, &limits(), 3).is_err());
    assert_eq!(decoded_bytes(&rgb, &limits()).unwrap(), 8 * 8 * 3);
    let rle = rle_image("1.2.3.5", 12, 10);
    assert_eq!(decode_frame(&rle, &limits(), 0).unwrap().width(), 10);
}

#[test]
fn sequences_nested_past_the_limit_are_refused_not_followed() {
    let inner = el(0x0008, 0x0100, b"SH", b"CODE");
    let at_limit = object(
        EXPLICIT_LE,
        &[identity("1.2.9"), nested(MAX_SEQUENCE_DEPTH, &inner)].concat(),
    );
    assert!(DicomHeader::read(&at_limit).is_ok());
    for depth in [MAX_SEQUENCE_DEPTH + 1, 5_000, 200_000] {
        let deep = object(
            EXPLICIT_LE,
            &[identity("1.2.9"), nested(depth, &inner)].concat(),
        );
        let err = DicomHeader::read(&deep).err().expect("refused");
        assert!(matches!(err, ImageError::OverLimit(_)), "{err}");
        assert!(err.to_string().contains("nest deeper"), "{err}");
        assert!(matches!(
            decode_frame(&deep, &limits(), 0),
            Err(ImageError::OverLimit(_))
        ));
    }
}

#[test]
fn implicit_vr_nesting_is_bounded_too() {
    let mut data = Vec::new();
    for _ in 0..10_000 {
        data.extend(el_implicit(0x0040, 0xA730, &[]).split_at(4).0);
        data.extend(u32::MAX.to_le_bytes());
        data.extend(item_tag(0xE000, u32::MAX));
    }
    let deep = object(IMPLICIT_LE, &data);
    assert!(matches!(
        DicomHeader::read(&deep),
        Err(ImageError::OverLimit(_))
    ));
}

#[test]
fn a_length_past_the_bytes_present_is_refused_before_allocating() {
    let mut data = identity("1.2.8");
    data.extend(el_claiming(0x0009, 0x1010, b"OB", 0xFFFF_FFF0));
    let liar = object(EXPLICIT_LE, &data);
    assert!(liar.len() < 1000);
    let err = DicomHeader::read(&liar).err().expect("refused");
    assert!(
        matches!(&err, ImageError::Damaged(m) if m.contains("runs past")),
        "{err}"
    );
    // The same lie inside an item of defined length, and in the meta group.
    let mut item = el(0x0008, 0x0100, b"SH", b"A");
    item.extend(el_claiming(0x0008, 0x0104, b"UT", 1_000_000));
    let mut seq = el_claiming(0x0040, 0xA730, b"SQ", (item.len() + 8) as u32);
    seq.extend(item_tag(0xE000, item.len() as u32));
    seq.extend(item);
    let liar = object(EXPLICIT_LE, &[identity("1.2.8"), seq].concat());
    assert!(matches!(
        DicomHeader::read(&liar),
        Err(ImageError::Damaged(_))
    ));
    let mut meta_liar = object(EXPLICIT_LE, &identity("1.2.8"));
    meta_liar.truncate(150);
    assert!(DicomHeader::read(&meta_liar).is_err());
}

#[test]
fn frame_counts_come_from_the_pixel_data_present() {
    let mut data = identity("1.2.7");
    data.extend(pixel_module(4, 4, 1, 8, Some("2000000000")));
    data.extend(el(0x7FE0, 0x0010, b"OB", &[7u8; 48]));
    let claims = object(EXPLICIT_LE, &data);
    let err = DicomHeader::read(&claims).err().expect("refused");
    assert!(matches!(err, ImageError::OverLimit(_)), "{err}");
    // Within the frame limit, but more than the 3 frames present.
    let mut data = identity("1.2.7");
    data.extend(pixel_module(4, 4, 1, 8, Some("4")));
    data.extend(el(0x7FE0, 0x0010, b"OB", &[7u8; 48]));
    let err = DicomHeader::read(&object(EXPLICIT_LE, &data))
        .err()
        .expect("refused");
    assert!(
        matches!(&err, ImageError::Damaged(m) if m.contains("holds 48 bytes")),
        "{err}"
    );
}

#[test]
fn encapsulated_frames_need_their_fragments() {
    let mut jpeg = Vec::new();
    image::DynamicImage::new_rgb8(8, 8)
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let one = jpeg_image("1.2.6", 8, 8, &jpeg);
    assert_eq!(decode_frame(&one, &limits(), 0).unwrap().width(), 8);
    let mut data = identity("1.2.6");
    data.extend(pixel_module(8, 8, 3, 8, Some("5")));
    data.extend(el_claiming(0x7FE0, 0x0010, b"OB", u32::MAX));
    data.extend(item_tag(0xE000, 0));
    data.extend(item_tag(0xE000, 2));
    data.extend([0x00, 0x01]);
    data.extend(item_tag(0xE0DD, 0));
    let err = DicomHeader::read(&object(JPEG_BASELINE, &data))
        .err()
        .expect("refused");
    assert!(
        matches!(&err, ImageError::Damaged(m) if m.contains("1 fragment")),
        "{err}"
    );
}

#[test]
fn a_header_over_the_image_limits_is_refused_before_decoding() {
    let mut data = identity("1.2.5");
    data.extend(pixel_module(60_000, 60_000, 3, 8, None));
    data.extend(el(0x7FE0, 0x0010, b"OB", &[0u8; 64]));
    let huge = object(EXPLICIT_LE, &data);
    assert!(matches!(
        decode_frame(&huge, &limits(), 0),
        Err(ImageError::Damaged(_) | ImageError::OverLimit(_))
    ));
    assert!(decoded_bytes(&huge, &limits()).is_err());
}

#[test]
fn countless_values_and_deflate_bombs_are_bounded() {
    let many = vec![b'\\'; 600_000];
    let mut cs = Vec::new();
    cs.extend(0x0008u16.to_le_bytes());
    cs.extend(0x0008u16.to_le_bytes());
    cs.extend(b"UC\0\0");
    cs.extend((many.len() as u32).to_le_bytes());
    cs.extend(&many);
    let crowded = object(EXPLICIT_LE, &[identity("1.2.4"), cs].concat());
    assert!(matches!(
        DicomHeader::read(&crowded),
        Err(ImageError::OverLimit(_))
    ));

    use std::io::Write;
    let zeros = vec![0u8; 8 << 20];
    let mut deflater = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    deflater.write_all(&zeros).unwrap();
    let bomb = object(DEFLATED, &deflater.finish().unwrap());
    let small = ImageLimits {
        max_file_bytes: 1 << 20,
        ..limits()
    };
    let err = decode_frame(&bomb, &small, 0).unwrap_err();
    assert!(
        matches!(&err, ImageError::OverLimit(m) if m.contains("inflates")),
        "{err}"
    );
}

#[test]
fn a_codestream_larger_than_its_header_says_is_refused_before_decoding() {
    let mut jpeg = Vec::new();
    image::DynamicImage::new_rgb8(16, 16)
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let small_header = jpeg_image("1.2.3.9", 8, 8, &jpeg);
    let err = DicomHeader::read(&small_header).err().expect("refused");
    assert!(
        matches!(&err, ImageError::Damaged(m) if m.contains("16×16")),
        "{err}"
    );
    // A JPEG 2000 codestream claiming 65,535 × 65,535 pixels in 64 tiles
    // of 1 × 1, in an object whose header says 8 × 8.
    let mut j2k = vec![0xFF, 0x4F, 0xFF, 0x51, 0, 41, 0, 0];
    for v in [65_535u32, 65_535, 0, 0, 1, 1, 0, 0] {
        j2k.extend(v.to_be_bytes());
    }
    j2k.extend([0, 3, 7, 1, 1, 7, 1, 1, 7, 1, 1]);
    let claim = jpeg_image("1.2.3.10", 8, 8, &j2k);
    assert!(matches!(
        DicomHeader::read(&claim),
        Err(ImageError::Damaged(_))
    ));
    assert!(decode_frame(&claim, &limits(), 0).is_err());
    // The same codestream in a JP2 file's codestream box.
    let mut jp2 = vec![
        0, 0, 0, 0x0C, b'j', b'P', b' ', b' ', 0x0D, 0x0A, 0x87, 0x0A,
    ];
    jp2.extend((8 + j2k.len() as u32).to_be_bytes());
    jp2.extend(b"jp2c");
    jp2.extend(&j2k);
    let wrapped = jpeg_image("1.2.3.12", 8, 8, &jp2);
    assert!(matches!(
        DicomHeader::read(&wrapped),
        Err(ImageError::Damaged(_))
    ));
}

#[test]
fn an_rle_frame_claiming_more_than_it_holds_is_refused() {
    let good = rle_image("1.2.3.11", 12, 10);
    // The RLE header follows the offset table's empty item: 8 bytes after it.
    let header = good
        .windows(8)
        .position(|w| w == [0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0])
        .unwrap()
        + 16;
    assert_eq!(good[header], 1, "one segment");
    let mut segments = good.clone();
    segments[header..header + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let err = DicomHeader::read(&segments).err().expect("refused");
    assert!(
        matches!(&err, ImageError::Damaged(m) if m.contains("segments")),
        "{err}"
    );
    // A run that expands past the plane (PackBits: -127 repeats 128 times).
    let mut runs = good.clone();
    runs[header + 64] = 0x81;
    let err = decode_frame(&runs, &limits(), 0).unwrap_err();
    assert!(matches!(err, ImageError::Damaged(_)), "{err}");
}
