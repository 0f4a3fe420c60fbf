//! DICOM files end to end: test files made by real DICOM tools (dcmtk's
//! `img2dcm` and `dcmcjpeg`, pydicom with pylibjpeg-openjpeg; see
//! `tests/dicom/make_dicom.py`) from a synthetic fundus photograph and the
//! real CC0 one; codes against the same picture as PNG or JPEG; a mixed
//! folder ingested with fields from the headers; broken files refused with
//! their reasons; the server rendering a DICOM document.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::common::server::{all_docs, ash, multipart, Server, ROOT};
use serde_json::{json, Value};

const MODEL: &str = "plugin/models/ash-synfundus-48";

/// The generated files (made once per test binary) and their manifest.
fn dicom_files() -> &'static (PathBuf, HashMap<String, Value>) {
    static FILES: OnceLock<(PathBuf, HashMap<String, Value>)> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dicom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let python = Path::new(ROOT).join(".cache/venv-plugin/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run `make plugin-test` (it installs pydicom and pylibjpeg-openjpeg)",
            python.display()
        );
        for tool in ["img2dcm", "dcmcjpeg", "dcmdump"] {
            assert!(
                Command::new(tool).arg("--version").output().is_ok(),
                "{tool} is missing: install dcmtk (`apt-get install dcmtk`, or `scripts/ensure_dicom_tools.sh`)"
            );
        }
        let picture = dir.join("picture.png");
        let made = Command::new(&python)
            .current_dir(Path::new(ROOT).join("plugin"))
            .args(["-c", &format!(
                "from ash.synthetic import fundus; fundus(3, 20261127, size=160).save({:?})",
                picture.display().to_string()
            )])
            .status()
            .unwrap();
        assert!(made.success());
        let out = dir.join("files");
        let made = Command::new(&python)
            .arg(Path::new(ROOT).join("tests/dicom/make_dicom.py"))
            .arg(&out)
            .arg(&picture)
            .arg(real_jpeg())
            .output()
            .unwrap();
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        let manifest: HashMap<String, Value> =
            serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
        (dir, manifest)
    })
}

fn real_jpeg() -> PathBuf {
    Path::new(ROOT).join("tests/fixtures/cc0/retina.jpg")
}

fn file(name: &str) -> String {
    dicom_files()
        .0
        .join("files")
        .join(name)
        .display()
        .to_string()
}

/// `ash-search encode --json` of `files`: file → code, or the error.
fn encode(files: &[String]) -> HashMap<String, Result<String, String>> {
    let mut args = vec!["encode", "--json", "--encoder", MODEL];
    args.extend(files.iter().map(String::as_str));
    let out = Command::new(env!("CARGO_BIN_EXE_ash-search"))
        .current_dir(ROOT)
        .args(&args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let result = match v.get("code") {
                Some(c) => Ok(c.as_str().unwrap().to_string()),
                None => Err(v["error"].as_str().unwrap().to_string()),
            };
            (v["file"].as_str().unwrap().to_string(), result)
        })
        .collect()
}

#[test]
fn dicom_codes_equal_the_same_picture_for_uncompressed_and_lossless_syntaxes() {
    let (dir, manifest) = dicom_files();
    let png = dir.join("picture.png").display().to_string();
    let mut files = vec![png.clone(), real_jpeg().display().to_string()];
    files.extend(manifest.keys().map(|n| file(n)));
    let codes = encode(&files);
    let reference = codes[&png].clone().unwrap();
    for (name, expect) in manifest {
        let got = codes[&file(name)]
            .as_ref()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if expect["same_as_png"] == true {
            assert_eq!(got, &reference, "{name}: the DICOM and the PNG disagree");
        }
    }
    // JPEG baseline in DICOM (img2dcm wraps the file's own bytes): the
    // frame is decoded as the file is, so the codes are equal.
    let jpeg = codes[&real_jpeg().display().to_string()].clone().unwrap();
    let wrapped = codes[&file("jpeg-baseline.dcm")].clone().unwrap();
    assert_eq!(jpeg, wrapped);
    // 16-bit monochrome and YBR_FULL decode (their codes are their own).
    assert!(codes[&file("mono16.dcm")].is_ok());
    assert!(codes[&file("ybr-full.dcm")].is_ok());
}

#[test]
fn broken_dicom_files_are_refused_with_their_reasons() {
    let bad = [
        "bad-no-pixels.dcm",
        "bad-jpeg-ls.dcm",
        "bad-truncated.dcm",
        "bad-corrupt-frame.dcm",
        "bad-huge.dcm",
    ];
    let codes = encode(&bad.iter().map(|n| file(n)).collect::<Vec<_>>());
    let reason = |n: &str| codes[&file(n)].clone().unwrap_err();
    assert!(
        reason("bad-no-pixels.dcm").contains("no pixel data"),
        "{}",
        reason("bad-no-pixels.dcm")
    );
    assert!(reason("bad-no-pixels.dcm").contains("Encapsulated PDF"));
    assert!(
        reason("bad-jpeg-ls.dcm").contains("JPEG-LS"),
        "{}",
        reason("bad-jpeg-ls.dcm")
    );
    assert!(reason("bad-jpeg-ls.dcm").contains("1.2.840.10008.1.2.4.80"));
    assert!(
        reason("bad-truncated.dcm").contains("JPEG 2000"),
        "{}",
        reason("bad-truncated.dcm")
    );
    assert!(
        reason("bad-corrupt-frame.dcm").contains("cannot be decoded"),
        "{}",
        reason("bad-corrupt-frame.dcm")
    );
    // Refused from the header, before 10 GB are allocated.
    assert!(
        reason("bad-huge.dcm").contains("60000×60000 pixels is over the size limits"),
        "{}",
        reason("bad-huge.dcm")
    );
}

fn index_with(dir: &Path, dicom: Option<Value>) -> String {
    crate::common::server::new_index(dir, |c| {
        c["fields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "device", "type": "keyword", "stored": true}));
        if let Some(d) = dicom {
            c["dicom"] = d;
        }
    })
}

#[test]
fn a_mixed_folder_ingests_in_one_command_with_fields_from_the_headers() {
    let (_, manifest) = dicom_files();
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("incoming");
    std::fs::create_dir(&folder).unwrap();
    for name in manifest.keys() {
        std::fs::copy(file(name), folder.join(name)).unwrap();
    }
    // A PACS export names files without an extension; and a photograph.
    std::fs::rename(folder.join("rgb-rle.dcm"), folder.join("IM000042")).unwrap();
    std::fs::copy(real_jpeg(), folder.join("retina.jpg")).unwrap();
    std::fs::copy(file("bad-no-pixels.dcm"), folder.join("bad-no-pixels.dcm")).unwrap();
    let index = index_with(tmp.path(), None);
    let errors = tmp.path().join("errors.jsonl");
    let out = ash(&[
        "ingest",
        &index,
        "--images",
        folder.to_str().unwrap(),
        "--quiet",
        "--errors",
        errors.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one bad file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let errors = std::fs::read_to_string(&errors).unwrap();
    assert_eq!(errors.lines().count(), 1, "{errors}");
    assert!(errors.contains("no pixel data"), "{errors}");

    let docs = all_docs(&index);
    assert_eq!(docs.len(), manifest.len() + 1, "{:?}", docs.keys());
    assert!(
        docs.contains_key("retina"),
        "a JPEG keeps its file stem as id"
    );
    for (name, expect) in manifest {
        let uid = expect["uid"].as_str().unwrap();
        let fields = docs
            .get(uid)
            .unwrap_or_else(|| panic!("{name}: no document {uid}"));
        assert_eq!(fields["patient_id"], expect["patient"], "{name}");
        assert_eq!(fields["eye"], expect["eye"], "{name}");
        assert_eq!(fields["acquired"], "2026-03-14T00:00:00Z", "{name}");
        assert_eq!(
            fields["report"], "diabetic retinopathy screening, exudates",
            "{name}"
        );
        assert_eq!(fields["device"], "FundusCam 3", "{name}");
    }
    let everything = serde_json::to_string(&docs).unwrap();
    assert!(
        !everything.contains("Doe"),
        "the patient's name is never stored"
    );
    assert!(!everything.contains("19500101"), "nor the birth date");
}

#[test]
fn the_mapping_is_configurable_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let mapping = json!({"id": "PatientID", "fields": {"report": ["ManufacturerModelName"], "eye": ["Laterality"]}});
    let index = index_with(tmp.path(), Some(mapping));
    let records = tmp.path().join("r.jsonl");
    let explicit = file("rgb-explicit.dcm");
    std::fs::write(
        &records,
        format!(
            "{}\n",
            json!({"id": "given", "image": explicit, "report": "typed by hand"})
        ),
    )
    .unwrap();
    let out = ash(&["ingest", &index, records.to_str().unwrap(), "--quiet"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let folder = tmp.path().join("one");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(file("rgb-implicit.dcm"), folder.join("a.dcm")).unwrap();
    let out = ash(&[
        "ingest",
        &index,
        "--images",
        folder.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = all_docs(&index);
    assert_eq!(
        docs["given"]["report"], "typed by hand",
        "the record's value wins"
    );
    assert!(
        docs["given"].get("eye").is_none(),
        "Laterality is absent; ImageLaterality is not mapped"
    );
    assert_eq!(
        docs["P-002"]["report"], "FundusCam 3",
        "id from PatientID, report from the model name"
    );
    assert!(
        docs["P-002"].get("patient_id").is_none(),
        "only mapped fields are filled"
    );

    for (bad, needle) in [
        (json!({"fields": {"nope": ["PatientID"]}}), "not a field"),
        (
            json!({"fields": {"eye": ["PatientNickname"]}}),
            "not a DICOM attribute",
        ),
        (json!({"id": "Nonsense"}), "not a DICOM attribute"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut c: Value = serde_json::from_str(
            &std::fs::read_to_string(Path::new(ROOT).join("schemas/examples/index.json")).unwrap(),
        )
        .unwrap();
        c["dicom"] = bad;
        let cfg = dir.path().join("c.json");
        std::fs::write(&cfg, c.to_string()).unwrap();
        let out = ash(&[
            "init",
            dir.path().join("i").to_str().unwrap(),
            "--schema",
            cfg.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_server_renders_dicom_documents_and_searches_by_a_dicom_upload() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("images");
    std::fs::create_dir(&folder).unwrap();
    for name in ["rgb-j2k.dcm", "mono16.dcm"] {
        std::fs::copy(file(name), folder.join(name)).unwrap();
    }
    let index = index_with(tmp.path(), None);
    let out = ash(&[
        "ingest",
        &index,
        "--images",
        folder.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, manifest) = dicom_files();
    let s = Server::start(&index, json!({"image_roots": [folder]}), &[]);
    for name in ["rgb-j2k.dcm", "mono16.dcm"] {
        let uid = manifest[name]["uid"].as_str().unwrap();
        let (status, body, content_type) = s.get(&format!("/documents/{uid}/image"));
        assert_eq!(
            (status, content_type.as_str()),
            (200, "image/png"),
            "{name}"
        );
        let picture = image::load_from_memory(&body).unwrap();
        assert_eq!((picture.width(), picture.height()), (160, 160), "{name}");
        let (status, body, content_type) = s.get(&format!("/documents/{uid}/thumbnail?size=64"));
        assert_eq!(
            (status, content_type.as_str()),
            (200, "image/jpeg"),
            "{name}"
        );
        assert!(image::load_from_memory(&body).is_ok());
    }
    let upload = std::fs::read(file("rgb-explicit.dcm")).unwrap();
    let (ct, body) = multipart(&[("k", "1")], Some(("image", &upload)));
    let (status, res) = s.post("/search", &ct, body, &[]);
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["hits"][0]["id"], manifest["rgb-j2k.dcm"]["uid"]);
    assert_eq!(
        res["hits"][0]["distance"], 0,
        "the same picture, another syntax"
    );
}

/// With `"frames": "each"` every frame of a multi-frame object is a
/// document (`<uid>-f<n>`, its number in `frame`), encoded from that frame
/// and shown as that frame; a frame the object lacks, or a frame of a
/// plain image, is an error record.
#[test]
fn each_frame_can_be_a_document() {
    let (dir, manifest) = dicom_files();
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("images");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(file("multiframe.dcm"), folder.join("multiframe.dcm")).unwrap();
    let index = index_with(tmp.path(), Some(json!({"frames": "each"})));
    let out = ash(&[
        "ingest",
        &index,
        "--images",
        folder.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uid = manifest["multiframe.dcm"]["uid"].as_str().unwrap();
    let docs = all_docs(&index);
    let mut ids: Vec<&String> = docs.keys().collect();
    ids.sort();
    let want: Vec<String> = (1..=3).map(|n| format!("{uid}-f{n}")).collect();
    assert_eq!(ids, want.iter().collect::<Vec<_>>());
    for n in 1..=3u64 {
        let fields = &docs[&format!("{uid}-f{n}")];
        assert_eq!(fields["frame"], n, "{fields}");
        assert_eq!(fields["eye"], "OD", "the header's fields on every frame");
    }
    // Each frame's code is that of the same pixels as PNG.
    let pictures = [
        dir.join("picture.png"),
        dir.join("files/frame-2.png"),
        dir.join("files/frame-3.png"),
    ];
    for (n, picture) in (1..=3).zip(&pictures) {
        let out = ash(&[
            "search",
            &index,
            "--image",
            picture.to_str().unwrap(),
            "--radius",
            "0",
            "-k",
            "10",
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hits: Value = serde_json::from_slice(&out.stdout).unwrap();
        let id = format!("{uid}-f{n}");
        assert!(
            hits["hits"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["id"] == id.as_str()),
            "frame {n}: {hits}"
        );
    }
    // The page shows each document's own frame.
    let s = Server::start(&index, json!({"image_roots": [folder]}), &[]);
    for (n, picture) in (1..=3).zip(&pictures) {
        let (status, body, content_type) = s.get(&format!("/documents/{uid}-f{n}/image"));
        assert_eq!((status, content_type.as_str()), (200, "image/png"));
        let shown = image::load_from_memory(&body).unwrap().to_rgb8();
        let expected = image::open(picture).unwrap().to_rgb8();
        assert!(shown == expected, "frame {n} is not the frame shown");
        let (status, _, _) = s.get(&format!("/documents/{uid}-f{n}/thumbnail?size=64"));
        assert_eq!(status, 200);
    }
    // Frames that are not there.
    let records = tmp.path().join("frames.jsonl");
    let png = dir.join("picture.png");
    std::fs::write(
        &records,
        format!(
            "{}\n{}\n",
            json!({"id": "too-far", "image": file("multiframe.dcm"), "frame": 4}),
            json!({"id": "plain", "image": png, "frame": 2}),
        ),
    )
    .unwrap();
    let errors = tmp.path().join("errors.jsonl");
    let out = ash(&[
        "ingest",
        &index,
        records.to_str().unwrap(),
        "--quiet",
        "--errors",
        errors.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let errors = std::fs::read_to_string(&errors).unwrap();
    assert!(
        errors.contains("DICOM frame 4 asked for; the object has 3"),
        "{errors}"
    );
    assert!(
        errors.contains("only DICOM objects have more than one"),
        "{errors}"
    );
}
