//! Untrusted files, class by class, against the real binary and a real
//! server on loopback: DICOM objects that nest without end or declare
//! sizes their bytes do not hold, file-system objects that are not regular
//! files, a half-copied object beside its intact twin, form fields, and
//! refusals that must be the API's JSON. Each class is tried on every door
//! it can come through (upload, folder, JSONL path, `encode`, image roots);
//! nothing may abort, hang, or grow the server past its memory budget.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::server::*;
use crate::part10::*;
use serde_json::{json, Value};

const MODEL: &str = "plugin/models/ash-synfundus-48";

/// A run of the binary that must end within `limit` (a hang fails the test).
fn ash_within(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ash-search"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!("ash-search {args:?} hung: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The hostile objects, by name: each with a word its refusal contains.
fn hostile_objects() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let deep = object(
        EXPLICIT_LE,
        &[identity("1.2.826.7.1"), nested(5_000, &[])].concat(),
    );
    let mut claim = identity("1.2.826.7.2");
    claim.extend(el_claiming(0x0009, 0x1010, b"OB", 0xFFFF_FFF0));
    let claim = object(EXPLICIT_LE, &claim);
    assert!(claim.len() < 1_000);
    let mut frames = identity("1.2.826.7.3");
    frames.extend(pixel_module(64, 64, 3, 8, Some("2000000000")));
    frames.extend(el(0x7FE0, 0x0010, b"OB", &vec![90u8; 64 * 64 * 3]));
    let frames = object(EXPLICIT_LE, &frames);
    vec![
        ("deep.dcm", deep, "nest deeper"),
        ("claim.dcm", claim, "runs past"),
        ("frames.dcm", frames, "frames"),
    ]
}

/// An intact DICOM photograph (64 × 64 RGB) with this SOP Instance UID.
fn intact(uid: &str) -> Vec<u8> {
    native_image(uid, 64, 64, 3, 8, 1)
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success(), "mkfifo (coreutils) is needed");
}

/// An index whose DICOM mapping is `dicom` (the example's when `None`).
fn index_with(dir: &Path, dicom: Option<Value>) -> String {
    new_index(dir, |c| {
        if let Some(d) = dicom {
            c["dicom"] = d;
        }
    })
}

/// The ids of every document, sorted.
fn ids(index: &str) -> Vec<String> {
    let mut ids: Vec<String> = all_docs(index).into_keys().collect();
    ids.sort();
    ids
}

fn errors_of(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The reason of the error record whose input ends with `name`.
fn reason<'a>(errors: &'a [Value], name: &str) -> &'a str {
    errors
        .iter()
        .find(|e| e["input"].as_str().unwrap_or_default().ends_with(name))
        .and_then(|e| e["reason"].as_str())
        .unwrap_or_else(|| panic!("no error record for {name}: {errors:?}"))
}

/// A folder holding every hostile class beside two photographs and an
/// intact DICOM object whose half-copied twin sorts first.
fn hostile_folder(dir: &Path) -> PathBuf {
    let folder = dir.join("images");
    let sub = folder.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    for case in ["case-00", "case-04"] {
        std::fs::copy(
            fixtures().join(format!("images/{case}.png")),
            folder.join(format!("{case}.png")),
        )
        .unwrap();
    }
    for (name, bytes, _) in hostile_objects() {
        std::fs::write(folder.join(name), bytes).unwrap();
    }
    let whole = intact("1.2.826.7.9");
    std::fs::write(folder.join("b-intact.dcm"), &whole).unwrap();
    std::fs::write(folder.join("a-cut.dcm"), &whole[..whole.len() * 2 / 3]).unwrap();
    mkfifo(&folder.join("pipe.png"));
    std::os::unix::fs::symlink("/dev/zero", folder.join("zero.png")).unwrap();
    // Two links to the parent: followed naively, 2^depth folders.
    std::os::unix::fs::symlink("..", sub.join("l1")).unwrap();
    std::os::unix::fs::symlink("..", sub.join("l2")).unwrap();
    folder
}

#[test]
fn a_hostile_folder_gives_error_records_and_every_photograph_is_indexed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let index = index_with(tmp.path(), Some(json!({"frames": "each"})));
    let folder = hostile_folder(tmp.path());
    let errors = tmp.path().join("errors.jsonl");
    let out = ash_within(
        &[
            "ingest",
            &index,
            "--images",
            folder.to_str().unwrap(),
            "--errors",
            errors.to_str().unwrap(),
            "--quiet",
        ],
        Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("indexed=3 failed=6"), "{stderr}");
    assert_eq!(ids(&index), vec!["1.2.826.7.9", "case-00", "case-04"]);
    let errors = errors_of(&errors);
    for (name, _, needle) in hostile_objects() {
        assert!(reason(&errors, name).contains(needle), "{name}: {errors:?}");
    }
    assert!(reason(&errors, "a-cut.dcm").contains("DICOM"), "{errors:?}");
    assert!(reason(&errors, "pipe.png").contains("FIFO"), "{errors:?}");
    assert!(
        reason(&errors, "zero.png").contains("character device"),
        "{errors:?}"
    );
}

#[test]
fn jsonl_image_paths_and_encode_refuse_the_same_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let index = index_with(tmp.path(), Some(json!({"frames": "each"})));
    let folder = hostile_folder(tmp.path());
    let names = [
        "deep.dcm",
        "claim.dcm",
        "frames.dcm",
        "a-cut.dcm",
        "pipe.png",
        "zero.png",
        "b-intact.dcm",
        "case-00.png",
    ];
    let records: String = names
        .iter()
        .map(|n| format!("{}\n", json!({"id": n, "image": format!("images/{n}")})))
        .collect();
    let jsonl = tmp.path().join("records.jsonl");
    std::fs::write(&jsonl, records).unwrap();
    let errors = tmp.path().join("errors.jsonl");
    let out = ash_within(
        &[
            "ingest",
            &index,
            jsonl.to_str().unwrap(),
            "--errors",
            errors.to_str().unwrap(),
            "--quiet",
        ],
        Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("indexed=2 failed=6"), "{stderr}");
    assert_eq!(ids(&index), vec!["b-intact.dcm", "case-00.png"]);
    let errors = errors_of(&errors);
    assert!(reason(&errors, "pipe.png").contains("FIFO"), "{errors:?}");
    assert!(
        reason(&errors, "zero.png").contains("character device"),
        "{errors:?}"
    );
    assert!(
        reason(&errors, "deep.dcm").contains("nest deeper"),
        "{errors:?}"
    );

    // `encode`, on the command line and from a list: one code, the rest refused.
    let paths: Vec<String> = names
        .iter()
        .map(|n| folder.join(n).display().to_string())
        .collect();
    let list = tmp.path().join("list.txt");
    std::fs::write(&list, paths.join("\n")).unwrap();
    let mut args = vec!["encode", "--json", "--encoder", MODEL];
    args.extend(paths.iter().map(String::as_str));
    for args in [
        args,
        vec![
            "encode",
            "--json",
            "--encoder",
            MODEL,
            "--files-from",
            list.to_str().unwrap(),
        ],
    ] {
        let out = ash_within(&args, Duration::from_secs(120));
        assert_eq!(out.status.code(), Some(1));
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let coded: Vec<&str> = lines
            .iter()
            .filter(|l| l.get("code").is_some())
            .map(|l| l["file"].as_str().unwrap())
            .collect();
        assert_eq!(coded.len(), 2, "{lines:?}");
        assert!(coded
            .iter()
            .all(|f| f.ends_with("b-intact.dcm") || f.ends_with("case-00.png")));
    }
    // A list that is a device, or never ends a line, is refused, not read forever.
    let out = ash_within(
        &["encode", "--encoder", MODEL, "--files-from", "/dev/zero"],
        Duration::from_secs(60),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));
}

/// VmHWM and VmPeak of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .parse()
            .unwrap()
    };
    (field("VmHWM:"), field("VmPeak:"))
}

#[test]
fn hostile_dicom_uploads_without_a_credential_leave_the_server_answering() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let s = Server::start(
        &index,
        json!({"max_concurrent_images": 8, "image_queue_ms": 20_000}),
        &[],
    );
    let healthy = |s: &Server| {
        let (st, body) = s.get_json("/health");
        assert_eq!(st, 200, "{body}");
    };
    for (name, bytes, needle) in hostile_objects() {
        let (ct, body) = multipart(&[("k", "3")], Some(("image", &bytes)));
        let (st, res) = s.post("/search", &ct, body, &[]);
        assert_error(st, &res, 422, needle);
        eprintln!("{name}: {}", res["error"]["message"]);
        healthy(&s);
    }
    // Many at once: what one of them would claim (4 GB) is never taken.
    let (_, claim, _) = &hostile_objects()[1];
    let (ct, body) = multipart(&[("k", "3")], Some(("image", claim)));
    std::thread::scope(|scope| {
        for _ in 0..16 {
            scope.spawn(|| {
                let (st, res) = s.post("/search", &ct, body.clone(), &[]);
                assert!(st == 422 || st == 503, "{st} {res}");
            });
        }
    });
    healthy(&s);
    let (hwm, peak) = memory_kib(s.child.id());
    eprintln!("server after hostile uploads: VmHWM {hwm} KiB, VmPeak {peak} KiB");
    assert!(hwm < 1_000_000, "server resident peak {hwm} KiB");
    assert!(peak < 4_000_000, "server address-space peak {peak} KiB");
    // An intact DICOM upload still searches.
    let (ct, body) = multipart(&[("k", "3")], Some(("image", &intact("1.2.826.7.9"))));
    let (st, res) = s.post("/search", &ct, body, &[]);
    assert_eq!(st, 200, "{res}");
}

#[test]
fn an_upload_over_the_memory_budget_is_refused_before_decoding() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let s = Server::start(&index, json!({"image_memory_bytes": 8_000_000}), &[]);
    // 2,000 × 2,000 RGB: 12 MB decoded, three copies at the peak.
    let big = image::RgbImage::from_pixel(2_000, 2_000, image::Rgb([90, 40, 20]));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(big)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let (ct, body) = multipart(&[("k", "3")], Some(("image", &png)));
    let (st, res) = s.post("/search", &ct, body, &[]);
    assert_error(st, &res, 413, "memory budget");
    let small = std::fs::read(fixtures().join("images/case-00.png")).unwrap();
    let (ct, body) = multipart(&[("k", "3")], Some(("image", &small)));
    let (st, res) = s.post("/search", &ct, body, &[]);
    assert_eq!(st, 200, "{res}");
}

#[test]
fn form_fields_mean_what_the_same_json_means() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let s = Server::start(&index, json!({}), &[]);
    let cases: [(&str, &str, Value); 5] = [
        ("radius", "-1", json!(-1)),
        ("k", "2.9", json!(2.9)),
        ("k", "-3", json!(-3)),
        ("depth", "1e3", json!(1e3)),
        ("weight", "0.5.1", json!("0.5.1")),
    ];
    for (field, text, value) in cases {
        let (ct, body) = multipart(&[("like", "case-01"), (field, text)], None);
        let (form_status, form) = s.post("/search", &ct, body, &[]);
        assert_eq!(form_status, 400, "{field}={text}: {form}");
        if value.is_number() {
            let (json_status, json) = s.search(json!({"like": "case-01", field: value}));
            assert_eq!(json_status, 400, "{json}");
            assert_eq!(
                form["error"]["message"], json["error"]["message"],
                "{field}={text}"
            );
        }
    }
    let (ct, body) = multipart(&[("like", "case-01"), ("explain", "yes")], None);
    let (st, res) = s.post("/search", &ct, body, &[]);
    assert_error(st, &res, 400, "true or false");
    let (ct, body) = multipart(&[("like", "case-01"), ("k", "2")], None);
    let (st, res) = s.post("/search", &ct, body, &[]);
    assert_eq!(st, 200, "{res}");
    assert_eq!(res["hits"].as_array().unwrap().len(), 2);
}

#[test]
fn every_refusal_on_every_route_is_the_json_error() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let s = Server::start(&index, json!({}), &[]);
    for path in [
        "/documents/%FF%FE",
        "/documents/%FF%FE/image",
        "/documents/%FF%FE/thumbnail",
        "/documents/case-01/thumbnail?size=big",
        "/documents/case-01/thumbnail?size=64&size=65",
        "/no/such/route",
    ] {
        let (st, body, content_type) = s.get(path);
        assert!((400..500).contains(&st), "{path}: {st}");
        assert!(
            content_type.starts_with("application/json"),
            "{path}: {content_type}"
        );
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["status"], st, "{path}: {body}");
    }
    let (st, res) = s.post("/search", "application/json", b"{\"k\": ".to_vec(), &[]);
    assert_error(st, &res, 400, "not a search request");
}

#[test]
fn served_images_that_are_not_regular_files_are_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let index = index_with(tmp.path(), None);
    let folder = tmp.path().join("photos");
    std::fs::create_dir(&folder).unwrap();
    for case in ["case-00", "case-04", "case-07"] {
        std::fs::copy(
            fixtures().join(format!("images/{case}.png")),
            folder.join(format!("{case}.png")),
        )
        .unwrap();
    }
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
    // After the ingest, one photograph becomes a FIFO and one a link to a device.
    std::fs::remove_file(folder.join("case-00.png")).unwrap();
    mkfifo(&folder.join("case-00.png"));
    std::fs::remove_file(folder.join("case-04.png")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", folder.join("case-04.png")).unwrap();
    let s = Server::start(
        &index,
        json!({"image_roots": [folder], "request_timeout_ms": 60_000}),
        &[],
    );
    let mut answers = HashMap::new();
    for id in ["case-00", "case-04"] {
        for route in ["image", "thumbnail"] {
            let started = Instant::now();
            let (st, body, _) = s.get(&format!("/documents/{id}/{route}"));
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{id}/{route} waited"
            );
            let body: Value = serde_json::from_slice(&body).unwrap();
            answers.insert((id, route), (st, body));
        }
    }
    for ((id, route), (st, body)) in &answers {
        eprintln!("{id}/{route}: {body}");
        match *id {
            // A FIFO inside the roots: refused for what it is, not waited on.
            "case-00" => assert_error(*st, body, 422, "not a regular file"),
            // A link leads out of the roots (to /dev/zero): refused as such.
            _ => assert_error(*st, body, 403, "outside"),
        }
    }
    let (st, _, content_type) = s.get("/documents/case-07/thumbnail");
    assert_eq!((st, content_type.as_str()), (200, "image/jpeg"));
}
