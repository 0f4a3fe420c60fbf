//! The encoder against the shipped plugins: parity with the plugin's own
//! test vectors (computed by PyTorch at export), image formats, and every
//! way a plugin directory can disagree with its manifest.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use ash_encoder::preprocess::Preprocessor;
use ash_encoder::{Encoder, EncoderErrorKind, EncoderOptions};
use ash_image::{decode, ImageLimits};
use image::{DynamicImage, ImageFormat};
use serde_json::Value;

const MODELS: &[&str] = &[
    "ash-effnet-12",
    "ash-effnet-48",
    "ash-synfundus-12",
    "ash-synfundus-24",
    "ash-synfundus-36",
    "ash-synfundus-48",
];

fn plugin(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugin/models")
        .join(name)
}

fn load(dir: &Path) -> Encoder {
    Encoder::load(dir, &EncoderOptions::default()).unwrap_or_else(|e| {
        panic!("{e}\n(ONNX Runtime missing? run `make ort` in the repository root)")
    })
}

#[test]
fn shipped_models_match_their_test_vectors() {
    for name in MODELS {
        let dir = plugin(name);
        let encoder = load(&dir);
        let vectors: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("test_vectors.json")).unwrap())
                .unwrap();
        let vectors = vectors["vectors"].as_array().unwrap();
        let files: Vec<PathBuf> = vectors
            .iter()
            .map(|v| dir.join(v["image"].as_str().unwrap()))
            .collect();
        let results = encoder.encode_files(&files, 3);
        for (v, got) in vectors.iter().zip(results) {
            let got = got.unwrap();
            let want: Vec<f32> = v["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(got.outputs.len(), want.len(), "{name}");
            for (i, (a, b)) in got.outputs.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-3,
                    "{name} {} output {i}: {a} vs {b}",
                    v["image"]
                );
                if b.abs() >= 0.01 {
                    assert_eq!(got.code.bit(i), Some(*b >= 0.0), "{name} bit {i}");
                }
            }
            let want_code = v["code"].as_str().unwrap();
            let differing = ash_mih::code::BinaryCode::from_hex(want_code, want.len())
                .unwrap()
                .distance(&got.code)
                .unwrap();
            let uncertain = want.iter().filter(|b| b.abs() < 0.01).count() as u32;
            assert!(differing <= uncertain, "{name}: {differing} bits differ");
            let att = got
                .attention
                .expect("ASH models export their attention map");
            assert!(att.values.iter().all(|a| (0.0..=1.0).contains(a)));
            assert_eq!(att.values.len(), att.height * att.width);
        }
    }
}

fn encode_bytes(p: &Preprocessor, img: &DynamicImage, format: ImageFormat) -> Vec<f32> {
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), format).unwrap();
    p.tensor(&bytes).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn every_format_and_depth_gives_the_same_tensor() {
    let dir = plugin("ash-synfundus-48");
    let encoder = load(&dir);
    let p = encoder.preprocessor();
    let src = image::open(dir.join("test_vectors/grade2.png")).unwrap();
    let rgb = DynamicImage::ImageRgb8(src.to_rgb8());
    let reference = encode_bytes(p, &rgb, ImageFormat::Png);
    for format in [ImageFormat::Bmp, ImageFormat::Tiff] {
        assert_eq!(encode_bytes(p, &rgb, format), reference, "{format:?}");
    }
    let rgba = DynamicImage::ImageRgba8(rgb.to_rgba8());
    assert_eq!(encode_bytes(p, &rgba, ImageFormat::Png), reference, "RGBA");
    let rgb16 = DynamicImage::ImageRgb16(rgb.to_rgb16());
    assert_eq!(
        encode_bytes(p, &rgb16, ImageFormat::Png),
        reference,
        "16-bit"
    );
    let grey = DynamicImage::ImageLuma8(rgb.to_luma8());
    let grey16 = DynamicImage::ImageLuma16(rgb.to_luma16());
    assert_eq!(
        encode_bytes(p, &grey, ImageFormat::Png),
        encode_bytes(p, &grey16, ImageFormat::Png),
        "8- and 16-bit grey"
    );
    let jpeg = encode_bytes(p, &rgb, ImageFormat::Jpeg);
    let mean_abs: f32 = jpeg
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .sum::<f32>()
        / jpeg.len() as f32;
    assert!(mean_abs < 6.0, "JPEG is lossy but close: {mean_abs}");
    // A larger image is resized to the manifest's 128×128.
    let big = DynamicImage::ImageRgb8(image::imageops::resize(
        &rgb.to_rgb8(),
        512,
        512,
        image::imageops::FilterType::Triangle,
    ));
    let resized = encode_bytes(p, &big, ImageFormat::Png);
    assert_eq!(resized.len(), reference.len());
    assert!(max_diff(&resized, &reference) < 80.0);
}

/// A JPEG with an EXIF APP1 segment whose IFD0 holds one Orientation tag.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // padding, no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn exif_orientation_is_applied() {
    // 40×20: red on the left half, blue on the right.
    let mut img = image::RgbImage::new(40, 20);
    for (x, _, p) in img.enumerate_pixels_mut() {
        *p = if x < 20 {
            image::Rgb([220, 0, 0])
        } else {
            image::Rgb([0, 0, 220])
        };
    }
    let mut jpeg = Vec::new();
    DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
        .unwrap();
    let limits = ImageLimits::default();
    let plain = decode(&jpeg, &limits).unwrap();
    assert_eq!((plain.width(), plain.height()), (40, 20));
    // Orientation 6: the stored image is shown turned 90° clockwise, so the
    // left half (red) ends up on top.
    let turned = decode(&with_exif_orientation(&jpeg, 6), &limits).unwrap();
    assert_eq!((turned.width(), turned.height()), (20, 40));
    let top = turned.to_rgb8().get_pixel(10, 5).0;
    let bottom = turned.to_rgb8().get_pixel(10, 35).0;
    assert!(top[0] > 150 && top[2] < 80, "top {top:?}");
    assert!(bottom[2] > 150 && bottom[0] < 80, "bottom {bottom:?}");
}

/// A copy of a shipped plugin whose manifest `edit` changes.
fn edited_plugin(name: &str, edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let src = plugin(name);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(src.join("model.onnx"), dir.path().join("model.onnx")).unwrap();
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("manifest.json")).unwrap()).unwrap();
    edit(&mut manifest);
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();
    dir
}

/// Why `dir` does not load: its class and its message.
fn load_err(dir: &Path) -> (EncoderErrorKind, String) {
    match Encoder::load(dir, &EncoderOptions::default()) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => (e.kind(), e.to_string()),
    }
}

type ManifestEdit = dyn FnOnce(&mut Value);

#[test]
fn a_model_that_disagrees_with_its_manifest_is_refused() {
    let cases: Vec<(&str, Box<ManifestEdit>, &[&str])> = vec![
        (
            "input size",
            Box::new(|m| m["input"]["size"] = serde_json::json!([64, 64])),
            &["model.onnx", "input.size", "[N, 3, 64, 64]"],
        ),
        (
            "bits",
            Box::new(|m| m["bits"] = serde_json::json!(32)),
            &["model.onnx", "bits", "[N, 32]"],
        ),
        (
            "input name",
            Box::new(|m| m["input"]["name"] = serde_json::json!("pixels")),
            &["model.onnx", "input.name", "\"pixels\""],
        ),
        (
            "channels",
            Box::new(|m| {
                m["input"]["channel_order"] = serde_json::json!("GREY");
                m["input"]["mean"] = serde_json::json!([0.0]);
                m["input"]["std"] = serde_json::json!([1.0]);
            }),
            &["model.onnx", "input.size"],
        ),
        (
            "output name",
            Box::new(|m| m["outputs"]["attention"] = serde_json::json!("saliency")),
            &["model.onnx", "outputs.attention", "\"saliency\""],
        ),
        (
            "schema",
            Box::new(|m| {
                m.as_object_mut().unwrap().remove("threshold");
            }),
            &["manifest.json", "threshold"],
        ),
        (
            "schema type",
            Box::new(|m| m["input"]["size"] = serde_json::json!([128, "wide"])),
            &["manifest.json", "input.size[1]"],
        ),
        (
            "mean length",
            Box::new(|m| m["input"]["mean"] = serde_json::json!([0.0, 0.0])),
            &["manifest.json", "input.mean"],
        ),
        (
            "model digest",
            Box::new(|m| m["model_sha256"] = serde_json::json!("0".repeat(64))),
            &["model.onnx", "sha256"],
        ),
    ];
    for (what, edit, needles) in cases {
        let dir = edited_plugin("ash-synfundus-48", edit);
        let (kind, err) = load_err(dir.path());
        assert_eq!(kind, EncoderErrorKind::BadPlugin, "{what}: {err}");
        for needle in needles {
            assert!(err.contains(needle), "{what}: {err:?} lacks {needle:?}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    assert!(load_err(dir.path()).1.contains("manifest.json"));
    let dir = edited_plugin("ash-synfundus-48", |m| {
        m.as_object_mut().unwrap().remove("model_sha256");
    });
    std::fs::write(dir.path().join("model.onnx"), b"not a model").unwrap();
    let (_, err) = load_err(dir.path());
    assert!(
        err.contains("model.onnx") && err.contains("cannot load"),
        "{err}"
    );
}

#[test]
fn concurrent_callers_share_the_session_pool() {
    let dir = plugin("ash-synfundus-24");
    let encoder = Encoder::load(
        &dir,
        &EncoderOptions {
            sessions: 2,
            threads: 1,
            ..EncoderOptions::default()
        },
    )
    .unwrap();
    let files: Vec<PathBuf> = (0..5)
        .map(|g| dir.join(format!("test_vectors/grade{g}.png")))
        .collect();
    let alone: Vec<_> = encoder
        .encode_files(&files, 5)
        .into_iter()
        .map(|r| r.unwrap().code)
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| encoder.encode_files(&files, 2)))
            .collect();
        for h in handles {
            let codes: Vec<_> = h
                .join()
                .unwrap()
                .into_iter()
                .map(|r| r.unwrap().code)
                .collect();
            assert_eq!(codes, alone);
        }
    });
}
