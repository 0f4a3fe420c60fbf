//! A PACS as a source, end to end: a real Orthanc with its DICOMweb plugin
//! (started on loopback by `common::orthanc`), loaded over its REST API
//! with Ophthalmic Photography objects made by pydicom
//! (`tests/dicom/make_series.py`), ingested from with
//! `ash-search ingest --dicomweb`. And a hostile server (axum, in the test)
//! whose answers must not escape the save folder or stop the ingest
//! silently.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::orthanc::{Orthanc, PASSWORD, USER};
use crate::common::server::{ash, ROOT};
use crate::part10::{
    el, el_claiming, identity, native_image, nested, object, pixel_module, EXPLICIT_LE,
};
use serde_json::{json, Value};

const MODEL: &str = "plugin/models/ash-synfundus-48";

/// The generated objects (made once per test binary) and what each holds.
struct Series {
    dir: PathBuf,
    manifest: HashMap<String, Value>,
}

impl Series {
    fn files(&self, range: std::ops::Range<usize>) -> Vec<PathBuf> {
        range
            .map(|n| self.dir.join(format!("op-{n:04}.dcm")))
            .collect()
    }
}

fn series() -> &'static Series {
    static SERIES: OnceLock<Series> = OnceLock::new();
    SERIES.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dicomweb-{}", std::process::id()));
        let python = Path::new(ROOT).join(".cache/venv-plugin/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run `make plugin-test` (it installs pydicom and pylibjpeg-openjpeg)",
            python.display()
        );
        let made = Command::new(&python)
            .arg(Path::new(ROOT).join("tests/dicom/make_series.py"))
            .arg(&dir)
            .arg("300")
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let manifest =
            serde_json::from_str(&std::fs::read_to_string(dir.join("manifest-0.json")).unwrap())
                .unwrap();
        Series { dir, manifest }
    })
}

/// A fresh index with the shipped example configuration (its DICOM mapping
/// is the ophthalmology default).
fn new_index(dir: &Path) -> String {
    new_index_with(dir, None)
}

/// [`new_index`] with `dicom` as the configuration's DICOM mapping.
fn new_index_with(dir: &Path, dicom: Option<Value>) -> String {
    let mut config: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join("schemas/examples/index.json")).unwrap(),
    )
    .unwrap();
    config["hash"]["encoder"] = json!(format!("{ROOT}/{MODEL}"));
    if let Some(d) = dicom {
        config["dicom"] = d;
    }
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let index = dir.join("index");
    let out = ash(&[
        "init",
        index.to_str().unwrap(),
        "--schema",
        path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    index.display().to_string()
}

/// `ash-search ingest INDEX --dicomweb URL --save SAVE ARGS…` with the
/// given environment; the error records are parsed from `errors`.
fn ingest_from(
    index: &str,
    url: &str,
    save: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Output, Vec<Value>) {
    let errors = save.with_extension("errors.jsonl");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ash-search"));
    cmd.args(["ingest", index, "--dicomweb", url, "--quiet"])
        .arg("--save")
        .arg(save)
        .arg("--errors")
        .arg(&errors)
        .args(args)
        .env_remove("ASH_DICOMWEB_USER")
        .env_remove("ASH_DICOMWEB_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let records = std::fs::read_to_string(&errors)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out, records)
}

fn credentials() -> String {
    format!("{USER}:{PASSWORD}")
}

fn summary(out: &Output) -> HashMap<String, String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("indexed="))
        .unwrap_or_else(|| panic!("no summary in {stderr}"));
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn documents(index: &str) -> u64 {
    let out = ash(&["info", index, "--json"]);
    assert!(out.status.success());
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    info["documents"].as_u64().unwrap()
}

/// Every document of the index: id → fields.
fn all_documents(index: &str) -> HashMap<String, Value> {
    let out = ash(&["search", index, "--text", "*", "-k", "1000", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    result["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["id"].as_str().unwrap().to_string(), h["fields"].clone()))
        .collect()
}

#[test]
fn a_pacs_is_ingested_with_header_fields_and_a_second_run_adds_only_new_instances() {
    let s = series();
    let tmp = tempfile::tempdir().unwrap();
    let orthanc = Orthanc::start(&tmp.path().join("orthanc"), true);
    let mut first = s.files(0..20);
    first.push(s.dir.join("report.dcm"));
    orthanc.upload(&first);
    let index = new_index(tmp.path());
    let save = tmp.path().join("pacs");

    // Without credentials: refused, named, nothing indexed.
    let (out, _) = ingest_from(&index, &orthanc.dicomweb(), &save, &[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refused") && stderr.contains("401"),
        "{stderr}"
    );
    assert_eq!(documents(&index), 0);

    // With them: 20 pictures indexed, the PDF refused with its reason.
    let user = credentials();
    let env = [("ASH_DICOMWEB_USER", user.as_str())];
    let (out, errors) = ingest_from(&index, &orthanc.dicomweb(), &save, &[], &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let counts = summary(&out);
    assert_eq!(
        (counts["indexed"].as_str(), counts["failed"].as_str()),
        ("20", "1")
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["id"], "1.2.826.0.1.3680043.10.1377.4.1");
    assert!(
        errors[0]["reason"]
            .as_str()
            .unwrap()
            .contains("no pixel data"),
        "{errors:?}"
    );
    assert!(
        !stderr.contains(PASSWORD),
        "the password is never printed: {stderr}"
    );

    // Each document: id = SOPInstanceUID, fields from its header, the image
    // kept under the save folder, the code that of the original file.
    let docs = all_documents(&index);
    assert_eq!(docs.len(), 20);
    for n in 0..20 {
        let name = format!("op-{n:04}.dcm");
        let want = &s.manifest[&name];
        let uid = want["uid"].as_str().unwrap();
        let fields = &docs[uid];
        assert_eq!(fields["patient_id"], want["patient"], "{name}");
        assert_eq!(fields["eye"], want["eye"], "{name}");
        assert!(
            fields["acquired"]
                .as_str()
                .unwrap()
                .starts_with(want["date"].as_str().unwrap()),
            "{name}: {fields}"
        );
        assert_eq!(fields["modality"], "OP");
        let kept = save
            .join(want["study"].as_str().unwrap())
            .join(format!("{uid}.dcm"));
        assert_eq!(fields["image"], kept.display().to_string(), "{name}");
        assert!(kept.is_file());
        for value in fields.as_object().unwrap().values() {
            assert!(
                !value.to_string().contains("Doe"),
                "a name was stored: {fields}"
            );
        }
        let original = s.dir.join(&name);
        let out = ash(&[
            "search",
            &index,
            "--image",
            original.to_str().unwrap(),
            "--radius",
            "0",
            "-k",
            "100",
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hits: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            hits["hits"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["id"] == uid),
            "{name}: the indexed code differs from the file's: {hits}"
        );
    }
    // The save folder holds what was retrieved: the pictures and the PDF
    // (kept to be looked at), each whole.
    let written: Vec<PathBuf> = walk(&save);
    assert_eq!(written.len(), 21, "{written:?}");
    assert!(written
        .iter()
        .all(|p| p.extension().is_some_and(|e| e == "dcm")));

    // Five more arrive; the next night's run retrieves only those (and the
    // PDF, which is never indexed, again).
    orthanc.upload(&s.files(20..25));
    let (out, _) = ingest_from(&index, &orthanc.dicomweb(), &save, &[], &env);
    let counts = summary(&out);
    assert_eq!(
        (
            counts["indexed"].as_str(),
            counts["skipped"].as_str(),
            counts["failed"].as_str()
        ),
        ("5", "20", "1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(documents(&index), 25);
}

#[test]
fn since_and_study_narrow_what_is_retrieved() {
    let s = series();
    let tmp = tempfile::tempdir().unwrap();
    let orthanc = Orthanc::start(&tmp.path().join("orthanc"), false);
    orthanc.upload(&s.files(0..20));

    // Studies 1 and 3 (instances 5..10 and 15..20) are dated 2026-03-14.
    let index = new_index(&tmp.path().join("since").tap_mkdir());
    let save = tmp.path().join("since-pacs");
    let (out, _) = ingest_from(
        &index,
        &orthanc.dicomweb(),
        &save,
        &["--since", "2026-01-01"],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ids: Vec<String> = all_documents(&index).into_keys().collect();
    ids.sort();
    let mut want: Vec<String> = (5..10)
        .chain(15..20)
        .map(|n| {
            s.manifest[&format!("op-{n:04}.dcm")]["uid"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    want.sort();
    assert_eq!(ids, want);

    let study = s.manifest["op-0012.dcm"]["study"].as_str().unwrap();
    let index = new_index(&tmp.path().join("study").tap_mkdir());
    let save = tmp.path().join("study-pacs");
    let (out, _) = ingest_from(&index, &orthanc.dicomweb(), &save, &["--study", study], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = all_documents(&index);
    assert_eq!(docs.len(), 5);
    for n in 10..15 {
        assert!(docs.contains_key(
            s.manifest[&format!("op-{n:04}.dcm")]["uid"]
                .as_str()
                .unwrap()
        ));
    }

    // Bad values are refused before anything is asked of the server.
    for (flag, value, needle) in [
        ("--since", "2026-14-01", "not a date"),
        ("--study", "1.2/../3", "not a DICOM UID"),
    ] {
        let (out, _) = ingest_from(&index, &orthanc.dicomweb(), &save, &[flag, value], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
}

/// With `"frames": "each"`, a two-frame object from the PACS is two
/// documents, each with its frame's code; the next run retrieves neither.
#[test]
fn each_frame_of_a_pacs_object_can_be_a_document() {
    let s = series();
    let tmp = tempfile::tempdir().unwrap();
    let orthanc = Orthanc::start(&tmp.path().join("orthanc"), false);
    orthanc.upload(&[s.dir.join("stereo.dcm"), s.dir.join("op-0003.dcm")]);
    let index = new_index_with(tmp.path(), Some(json!({"frames": "each"})));
    let save = tmp.path().join("pacs");
    let (out, _) = ingest_from(&index, &orthanc.dicomweb(), &save, &[], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = all_documents(&index);
    let stereo = "1.2.826.0.1.3680043.10.1377.5.1";
    let single = s.manifest["op-0003.dcm"]["uid"].as_str().unwrap();
    let mut ids: Vec<&str> = docs.keys().map(String::as_str).collect();
    ids.sort();
    let mut want = [
        format!("{stereo}-f1"),
        format!("{stereo}-f2"),
        single.to_string(),
    ];
    want.sort();
    assert_eq!(ids, want.iter().map(String::as_str).collect::<Vec<_>>());
    // Frame n holds picture n, which op-000n holds alone.
    for n in 1..=2 {
        let picture = s.dir.join(format!("op-{n:04}.dcm"));
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
        let hits: Value = serde_json::from_slice(&out.stdout).unwrap();
        let id = format!("{stereo}-f{n}");
        assert!(
            hits["hits"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["id"] == id.as_str()),
            "frame {n}: {hits}"
        );
    }
    let (out, _) = ingest_from(&index, &orthanc.dicomweb(), &save, &[], &[]);
    let counts = summary(&out);
    assert_eq!(
        (counts["indexed"].as_str(), counts["skipped"].as_str()),
        ("0", "2")
    );
}

#[test]
fn an_orthanc_killed_mid_ingest_gives_a_clear_error_and_keeps_what_was_committed() {
    let s = series();
    let tmp = tempfile::tempdir().unwrap();
    let storage = tmp.path().join("orthanc");
    let mut orthanc = Orthanc::start(&storage, false);
    orthanc.upload(&s.files(0..300));
    let index = new_index(tmp.path());
    let save = tmp.path().join("pacs");
    let errors = tmp.path().join("errors.jsonl");
    let child = Command::new(env!("CARGO_BIN_EXE_ash-search"))
        .args([
            "ingest",
            &index,
            "--dicomweb",
            &orthanc.dicomweb(),
            "--quiet",
        ])
        .args([
            "--commit-every",
            "10",
            "--batch",
            "5",
            "--fetch-threads",
            "1",
        ])
        .arg("--save")
        .arg(&save)
        .arg("--errors")
        .arg(&errors)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the PACS as soon as the ingest has committed once.
    let started = Instant::now();
    while committed_documents(&index) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no commit within 60 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    orthanc.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("did not answer"), "{stderr}");
    assert!(stderr.contains("indexed and committed"), "{stderr}");
    let kept = documents(&index);
    assert!((10..300).contains(&kept), "{kept} documents kept: {stderr}");
    assert!(
        stderr.contains(&format!("The {kept} documents retrieved before")),
        "the message counts what was kept: {stderr}"
    );
    assert_eq!(all_documents(&index).len() as u64, kept);

    // Back up (the same storage, another port): the run finishes the rest.
    let orthanc = Orthanc::start(&storage, false);
    let (out, _) = ingest_from(&index, &orthanc.dicomweb(), &save, &[], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts = summary(&out);
    assert_eq!(counts["skipped"], kept.to_string());
    assert_eq!(counts["indexed"], (300 - kept).to_string());
    assert_eq!(documents(&index), 300);
}

/// A hostile DICOMweb server: a UID that climbs out of the save folder,
/// entries without UIDs, an answer that is not multipart, a part that is
/// not DICOM. Each is an error record; the one good instance is indexed;
/// nothing is written outside the save folder.
#[test]
fn a_hostile_server_gets_error_records_and_writes_nothing_outside_the_save_folder() {
    let s = series();
    let good = std::fs::read(s.dir.join("op-0001.dcm")).unwrap();
    let good_uid = s.manifest["op-0001.dcm"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let entry = |study: &str, sop: &str| {
        json!({
            "0020000D": {"vr": "UI", "Value": [study]},
            "0020000E": {"vr": "UI", "Value": ["1.2.3"]},
            "00080018": {"vr": "UI", "Value": [sop]},
        })
    };
    let listing = json!([
        entry("1.2", "../../../escaped"),
        entry("..", "1.2.3.4"),
        {"00080018": {"vr": "UI", "Value": ["1.2.9"]}},
        entry("1.2", "1.2.100"),
        entry("1.2", "1.2.101"),
        entry("1.2", &good_uid),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let server = FakeServer::start(listing, good, false);
    let index = new_index(tmp.path());
    let save = tmp.path().join("pacs");
    let (out, errors) = ingest_from(&index, &server.url, &save, &[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let reasons: Vec<&str> = errors
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 5, "{errors:?}");
    assert!(reasons[0].contains("not a DICOM UID"), "{reasons:?}");
    assert!(reasons[1].contains("not a DICOM UID"), "{reasons:?}");
    assert!(reasons[2].contains("no 0020000D value"), "{reasons:?}");
    assert!(reasons[3].contains("not multipart/related"), "{reasons:?}");
    assert!(
        reasons[4].contains("not a DICOM Part 10 object"),
        "{reasons:?}"
    );
    assert_eq!(
        all_documents(&index).into_keys().collect::<Vec<_>>(),
        vec![good_uid]
    );
    let written = walk(tmp.path());
    assert!(
        written
            .iter()
            .all(|p| p.starts_with(&save) || !p.to_string_lossy().contains("escaped")),
        "{written:?}"
    );
    assert_eq!(walk(&save).len(), 1);

    // A server that ignores `offset` would list the same page forever.
    let server = FakeServer::start(json!([entry("1.2", "1.2.100")]), Vec::new(), true);
    let (out, _) = ingest_from(&index, &server.url, &save, &[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ignores the listing's offset"), "{stderr}");

    // A listing that is not DICOM JSON.
    let server = FakeServer::start(json!({"not": "an array"}), Vec::new(), true);
    let (out, _) = ingest_from(&index, &server.url, &save, &[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a JSON array"), "{stderr}");
}

/// A PACS that serves hostile DICOM objects (nesting without end, a
/// length of 4 GB in a few hundred bytes, two billion frames): each is an
/// error record, the ingest ends, and the intact object is indexed.
#[test]
fn a_pacs_serving_hostile_objects_gets_error_records_and_the_rest_is_indexed() {
    let deep = object(
        EXPLICIT_LE,
        &[identity("1.2.826.8.1"), nested(5_000, &[])].concat(),
    );
    let mut claim = identity("1.2.826.8.2");
    claim.extend(el_claiming(0x0009, 0x1010, b"OB", 0xFFFF_FFF0));
    let mut frames = identity("1.2.826.8.3");
    frames.extend(pixel_module(64, 64, 3, 8, Some("2000000000")));
    frames.extend(el(0x7FE0, 0x0010, b"OB", &vec![90u8; 64 * 64 * 3]));
    let objects = HashMap::from([
        ("1.2.826.8.1".to_string(), deep),
        ("1.2.826.8.2".to_string(), object(EXPLICIT_LE, &claim)),
        ("1.2.826.8.3".to_string(), object(EXPLICIT_LE, &frames)),
    ]);
    let entry = |sop: &str| {
        json!({
            "0020000D": {"vr": "UI", "Value": ["1.2.826.8"]},
            "0020000E": {"vr": "UI", "Value": ["1.2.826.8.0"]},
            "00080018": {"vr": "UI", "Value": [sop]},
        })
    };
    let listing = json!([
        entry("1.2.826.8.1"),
        entry("1.2.826.8.2"),
        entry("1.2.826.8.3"),
        entry("1.2.826.8.4"),
    ]);
    let good = native_image("1.2.826.8.4", 64, 64, 3, 8, 1);
    let server = FakeServer::serving(listing, good, false, objects);
    let tmp = tempfile::tempdir().unwrap();
    let index = new_index_with(tmp.path(), Some(json!({"frames": "each"})));
    let (out, errors) = ingest_from(&index, &server.url, &tmp.path().join("pacs"), &[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let reasons: Vec<&str> = errors
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 3, "{errors:?}");
    assert!(reasons[0].contains("nest deeper"), "{reasons:?}");
    assert!(reasons[1].contains("runs past"), "{reasons:?}");
    assert!(reasons[2].contains("frames"), "{reasons:?}");
    assert_eq!(
        all_documents(&index).into_keys().collect::<Vec<_>>(),
        vec!["1.2.826.8.4".to_string()]
    );
}

/// The hostile server: `listing` for the first page (and for every page
/// when `repeat`), `/…/1.2.100` answered as HTML, `/…/1.2.101` as a
/// multipart whose part is text, anything else as `good` in multipart.
struct FakeServer {
    url: String,
    _runtime: tokio::runtime::Runtime,
}

impl FakeServer {
    fn start(listing: Value, good: Vec<u8>, repeat: bool) -> FakeServer {
        Self::serving(listing, good, repeat, HashMap::new())
    }

    /// [`FakeServer::start`], with `objects` served (whole, in multipart)
    /// for their SOP Instance UIDs.
    fn serving(
        listing: Value,
        good: Vec<u8>,
        repeat: bool,
        objects: HashMap<String, Vec<u8>>,
    ) -> FakeServer {
        use axum::extract::{Path as UrlPath, Query};
        use axum::http::header::CONTENT_TYPE;
        use axum::response::IntoResponse;
        use axum::routing::get;
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}/dicom-web", listener.local_addr().unwrap());
        let list = move |Query(q): Query<HashMap<String, String>>| {
            let listing = listing.clone();
            async move {
                let offset: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
                let body = if offset == 0 || repeat {
                    listing
                } else {
                    json!([])
                };
                ([(CONTENT_TYPE, "application/dicom+json")], body.to_string())
            }
        };
        let retrieve =
            move |UrlPath((_, _, sop)): UrlPath<(String, String, String)>| {
                let good = objects.get(&sop).cloned().unwrap_or_else(|| good.clone());
                async move {
                    let multipart = "multipart/related; type=\"application/dicom\"; boundary=XX";
                    match sop.as_str() {
                    "1.2.100" => ([(CONTENT_TYPE, "text/html")], b"<html>login</html>".to_vec()),
                    "1.2.101" => (
                        [(CONTENT_TYPE, multipart)],
                        b"--XX\r\nContent-Type: application/dicom\r\n\r\nnot dicom\r\n--XX--\r\n"
                            .to_vec(),
                    ),
                    _ => {
                        let mut body = b"--XX\r\nContent-Type: application/dicom\r\n\r\n".to_vec();
                        body.extend_from_slice(&good);
                        body.extend_from_slice(b"\r\n--XX--\r\n");
                        ([(CONTENT_TYPE, multipart)], body)
                    }
                }
                .into_response()
                }
            };
        let app = axum::Router::new()
            .route("/dicom-web/instances", get(list))
            .route(
                "/dicom-web/studies/{study}/series/{series}/instances/{sop}",
                get(retrieve),
            );
        runtime.spawn(async move { axum::serve(listener, app).await });
        FakeServer {
            url,
            _runtime: runtime,
        }
    }
}

/// Documents committed so far, read from tantivy's `meta.json` (the
/// ingest holds the writer; this reads only what a commit published).
fn committed_documents(index: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string(Path::new(index).join("meta.json")) else {
        return 0;
    };
    let Ok(meta) = serde_json::from_str::<Value>(&text) else {
        return 0;
    };
    meta["segments"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["max_doc"].as_u64()).sum())
        .unwrap_or(0)
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}
