//! `ash-search ingest` of images end to end: committed fixture images
//! (tests/fixtures/ingest, made by make_ingest_fixtures.py) → index →
//! image, filtered and hybrid queries; every bad input; encoder pinning;
//! ONNX Runtime missing; a killed ingest resumed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn ash(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ash-search"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

fn fixtures() -> PathBuf {
    Path::new(ROOT).join("tests/fixtures/ingest")
}

fn model(bits: u32) -> String {
    format!("{ROOT}/plugin/models/ash-synfundus-{bits}")
}

/// The example configuration with `encoder` set to `encoder`.
fn config(dir: &Path, encoder: Option<&str>) -> PathBuf {
    let mut c: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join("schemas/examples/index.json")).unwrap(),
    )
    .unwrap();
    match encoder {
        Some(e) => c["hash"]["encoder"] = Value::from(e),
        None => {
            c["hash"].as_object_mut().unwrap().remove("encoder");
        }
    }
    let path = dir.join("config.json");
    std::fs::write(&path, c.to_string()).unwrap();
    path
}

fn init(dir: &Path, encoder: Option<&str>) -> String {
    let index = dir.join("index");
    let cfg = config(dir, encoder);
    ok(ash(&[
        "init",
        index.to_str().unwrap(),
        "--schema",
        cfg.to_str().unwrap(),
    ]));
    index.display().to_string()
}

fn search_json(index: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["search", index, "--json"];
    args.extend_from_slice(extra);
    let out = ok(ash(&args));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["hits"].as_array().unwrap().clone()
}

fn ids(hits: &[Value]) -> Vec<String> {
    hits.iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn images_to_hybrid_queries_with_every_bad_input_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let index = init(tmp.path(), Some(&model(48)));
    let errors = tmp.path().join("errors.jsonl");
    let records = fixtures().join("records.jsonl");
    let out = ash(&[
        "ingest",
        &index,
        records.to_str().unwrap(),
        "--errors",
        errors.to_str().unwrap(),
        "--batch",
        "4",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "some records fail: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("CPUExecutionProvider"),
        "the provider is logged"
    );
    assert!(
        stderr(&out).contains("indexed=11 failed=8"),
        "{}",
        stderr(&out)
    );
    let errors: Vec<Value> = std::fs::read_to_string(&errors)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reason_of = |id: Option<&str>| -> (String, String, u64) {
        let e = errors
            .iter()
            .find(|e| e["id"].as_str() == id)
            .unwrap_or_else(|| panic!("no error for {id:?}: {errors:?}"));
        (
            e["reason"].as_str().unwrap().to_string(),
            e["input"].as_str().unwrap().to_string(),
            e["line"].as_u64().unwrap(),
        )
    };
    for (id, input, needle) in [
        ("bad-text", "not-an-image.png", "unrecognised image format"),
        ("bad-empty", "empty.png", "empty file"),
        ("bad-truncated", "truncated.png", "truncated PNG"),
        ("bad-bomb", "bomb.png", "limit"),
        ("bad-missing", "no-such-file.png", "No such file"),
        ("bad-grade", "records.jsonl", "field grade"),
        ("case-03", "records.jsonl", "duplicate id"),
    ] {
        let (reason, got_input, _) = reason_of(Some(id));
        assert!(reason.contains(needle), "{id}: {reason}");
        assert!(got_input.ends_with(input), "{id}: input {got_input}");
    }
    let (reason, _, line) = reason_of(None);
    assert!(
        reason.contains("not a JSON object") && line == 19,
        "{reason} {line}"
    );

    // Image only: each indexed image finds itself at distance 0.
    for case in ["case-00", "case-04", "case-07"] {
        let image = fixtures().join(format!("images/{case}.png"));
        let hits = search_json(&index, &["--image", image.to_str().unwrap(), "-k", "11"]);
        assert_eq!(hits.len(), 11);
        let me = hits.iter().find(|h| h["id"] == case).expect("finds itself");
        assert_eq!(me["distance"], 0);
        let d: Vec<u64> = hits
            .iter()
            .map(|h| h["distance"].as_u64().unwrap())
            .collect();
        assert!(d.windows(2).all(|w| w[0] <= w[1]), "{d:?}");
        assert_eq!(d[0], 0);
    }
    // --image gives the same hits as --like of the same indexed image.
    let image = fixtures().join("images/case-02.png");
    let by_image = search_json(&index, &["--image", image.to_str().unwrap(), "-k", "5"]);
    let by_like = search_json(&index, &["--like", "case-02", "-k", "5"]);
    assert_eq!(ids(&by_image), ids(&by_like));
    // Filtered and hybrid.
    let filtered = search_json(
        &index,
        &[
            "--image",
            image.to_str().unwrap(),
            "--filter",
            "grade:[3 TO 4]",
            "-k",
            "10",
        ],
    );
    assert_eq!(filtered.len(), 4, "cases 3, 4, 8, 9");
    assert!(filtered
        .iter()
        .all(|h| h["fields"]["grade"].as_i64().unwrap() >= 3));
    let hybrid = search_json(
        &index,
        &[
            "--image",
            image.to_str().unwrap(),
            "--text",
            "exudates",
            "--mode",
            "rrf",
            "-k",
            "3",
        ],
    );
    assert_eq!(hybrid.len(), 3);
    assert!(hybrid
        .iter()
        .any(|h| h["fields"]["report"].as_str().unwrap().contains("exudates")));
    // A bad query image is a clear error, not a panic.
    let bad = fixtures().join("images/truncated.png");
    let out = ash(&["search", &index, "--image", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("truncated.png") && stderr(&out).contains("truncated PNG"));
}

#[test]
fn an_image_folder_with_a_metadata_sheet() {
    let tmp = tempfile::tempdir().unwrap();
    let index = init(tmp.path(), None);
    let images = tmp.path().join("images");
    std::fs::create_dir(&images).unwrap();
    for name in [
        "case-00.png",
        "case-03.png",
        "retina.jpg",
        "not-an-image.png",
    ] {
        std::fs::copy(fixtures().join("images").join(name), images.join(name)).unwrap();
    }
    std::fs::write(images.join("notes.txt"), "not an image").unwrap();
    let csv = tmp.path().join("metadata.csv");
    std::fs::write(
        &csv,
        "file,id,eye,grade,report\n\
         case-00.png,A-1,OD,0,normal\n\
         case-03.png,A-2,OS,3,exudates and haemorrhages\n\
         gone.png,A-3,OD,1,no such image\n",
    )
    .unwrap();
    // Without an encoder the index has none to use: a clear error.
    let out = ash(&["ingest", &index, "--images", images.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--encoder"), "{}", stderr(&out));
    let errors = tmp.path().join("errors.jsonl");
    let out = ash(&[
        "ingest",
        &index,
        "--images",
        images.to_str().unwrap(),
        "--metadata",
        csv.to_str().unwrap(),
        "--encoder",
        &model(48),
        "--errors",
        errors.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let errors = std::fs::read_to_string(&errors).unwrap();
    assert!(
        errors.contains("gone.png") && errors.contains("no such image"),
        "{errors}"
    );
    assert!(
        errors.contains("notes.txt") && errors.contains("unsupported format"),
        "{errors}"
    );
    assert!(errors.contains("not-an-image.png"), "{errors}");
    let hits = search_json(&index, &["--like", "A-2", "-k", "5"]);
    assert_eq!(ids(&hits)[0], "A-2");
    assert_eq!(hits[0]["fields"]["grade"], 3);
    assert!(
        ids(&hits).contains(&"retina".to_string()),
        "stem as id: {hits:?}"
    );
    // The first ingest pinned the encoder.
    let info: Value = serde_json::from_slice(&ok(ash(&["info", &index, "--json"])).stdout).unwrap();
    assert_eq!(info["encoder"]["name"], "ash-synfundus-48");
}

#[test]
fn another_encoder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let index = init(tmp.path(), Some(&model(48)));
    let image = fixtures().join("images/case-00.png");
    let image = image.to_str().unwrap();
    // Other bits.
    let out = ash(&["search", &index, "--image", image, "--encoder", &model(24)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("24-bit") && stderr(&out).contains("48-bit"),
        "{}",
        stderr(&out)
    );
    // Same bits, another model (here: another version of the manifest).
    let other = tmp.path().join("other-48");
    std::fs::create_dir(&other).unwrap();
    std::fs::copy(
        format!("{}/model.onnx", model(48)),
        other.join("model.onnx"),
    )
    .unwrap();
    let mut m: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}/manifest.json", model(48))).unwrap(),
    )
    .unwrap();
    m["version"] = Value::from("1.0.1");
    std::fs::write(other.join("manifest.json"), m.to_string()).unwrap();
    let records = fixtures().join("records.jsonl");
    for args in [
        vec![
            "search",
            &index,
            "--image",
            image,
            "--encoder",
            other.to_str().unwrap(),
        ],
        vec![
            "ingest",
            &index,
            records.to_str().unwrap(),
            "--encoder",
            other.to_str().unwrap(),
        ],
    ] {
        let out = ash(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("not comparable") && err.contains("1.0.1") && err.contains("1.0.0"),
            "{err}"
        );
    }
    let info: Value = serde_json::from_slice(&ok(ash(&["info", &index, "--json"])).stdout).unwrap();
    assert_eq!(info["documents"], 0, "nothing was ingested");
}

#[test]
fn missing_onnx_runtime_names_the_fix() {
    let image = fixtures().join("images/case-00.png");
    let out = Command::new(env!("CARGO_BIN_EXE_ash-search"))
        .args(["encode", "--encoder", &model(12), image.to_str().unwrap()])
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("/nonexistent/libonnxruntime.so") && err.contains("make ort"),
        "{err}"
    );
    // A file that is not a library.
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("libonnxruntime.so");
    std::fs::write(&fake, b"not a library").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ash-search"))
        .args(["encode", "--encoder", &model(12), image.to_str().unwrap()])
        .env("ORT_DYLIB_PATH", &fake)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("make ort"), "{}", stderr(&out));
    // CUDA asked for on a CPU-only runtime is an error, not a fallback.
    let out = ash(&[
        "encode",
        "--encoder",
        &model(12),
        "--device",
        "cuda",
        image.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("CUDA"), "{}", stderr(&out));
}

#[test]
fn encode_prints_codes_and_reports_bad_files() {
    let good = fixtures().join("images/case-01.png");
    let bad = fixtures().join("images/empty.png");
    let out = ash(&[
        "encode",
        "--encoder",
        &model(24),
        "--json",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0]["code"].as_str().unwrap().len(),
        6,
        "24 bits = 3 bytes"
    );
    assert_eq!(lines[0]["code"], lines[2]["code"]);
    assert!(lines[1]["error"].as_str().unwrap().contains("empty"));
}

/// `--files-from` (a list, or `-` for standard input) gives the same codes
/// as the command line, in the command line's order then the list's.
#[test]
fn encode_reads_a_list_of_files() {
    let tmp = tempfile::tempdir().unwrap();
    let images: Vec<String> = ["case-01.png", "case-02.png", "empty.png", "case-03.png"]
        .iter()
        .map(|f| fixtures().join("images").join(f).display().to_string())
        .collect();
    let list = tmp.path().join("list.txt");
    std::fs::write(&list, format!("{}\r\n\n{}\n", images[1], images[2])).unwrap();
    let codes = |out: Output| -> Vec<Value> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let argv = codes(ash(&[
        "encode",
        "--encoder",
        &model(48),
        "--json",
        &images[0],
        &images[1],
        &images[2],
        &images[3],
    ]));
    let listed = ash(&[
        "encode",
        "--encoder",
        &model(48),
        "--json",
        &images[0],
        "--files-from",
        list.to_str().unwrap(),
        &images[3],
    ]);
    assert_eq!(listed.status.code(), Some(1), "empty.png fails");
    let listed = codes(listed);
    // Command line first (case-01, case-03), then the list (case-02, empty).
    let order = [0, 3, 1, 2];
    assert_eq!(listed.len(), 4);
    for (got, &want) in listed.iter().zip(&order) {
        assert_eq!(got["file"], Value::from(images[want].clone()));
        assert_eq!(got.get("code"), argv[want].get("code"));
        assert_eq!(got.get("error").is_some(), want == 2);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_ash-search"))
        .args([
            "encode",
            "--encoder",
            &model(48),
            "--json",
            "--files-from",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{}", images[3]).unwrap();
    let piped = codes(child.wait_with_output().unwrap());
    assert_eq!(piped.len(), 1);
    assert_eq!(piped[0]["code"], argv[3]["code"]);
    let missing = ash(&[
        "encode",
        "--encoder",
        &model(48),
        "--files-from",
        "/nonexistent/list",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("/nonexistent/list"),
        "{}",
        stderr(&missing)
    );
}

/// Several JSONL files (a distributed job's shards) in one ingest: every
/// record of every file, errors naming their own file, and a missing file
/// refused before anything is indexed.
#[test]
fn ingest_reads_several_record_files() {
    let tmp = tempfile::tempdir().unwrap();
    let index = init(tmp.path(), Some(&model(48)));
    let shard = |name: &str, lines: &[String]| -> String {
        let path = tmp.path().join(name);
        std::fs::write(&path, lines.join("\n")).unwrap();
        path.display().to_string()
    };
    let code = |i: usize| format!("{:012x}", i * 0x0101_0101);
    let a = shard(
        "codes-00000.jsonl",
        &(0..3)
            .map(|i| format!(r#"{{"id":"s0-{i}","code":"{}","grade":{i}}}"#, code(i)))
            .collect::<Vec<_>>(),
    );
    let b = shard(
        "codes-00001.jsonl",
        &[
            format!(r#"{{"id":"s1-0","code":"{}"}}"#, code(7)),
            r#"{"id":"s1-bad","code":"zz"}"#.to_string(),
        ],
    );
    let errors = tmp.path().join("errors.jsonl");
    let missing = tmp.path().join("codes-00002.jsonl");
    let refused = ash(&["ingest", &index, &a, missing.to_str().unwrap(), "--quiet"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("codes-00002.jsonl"),
        "{}",
        stderr(&refused)
    );
    assert!(
        search_json(&index, &["--code", "000000000000", "--k", "10"]).is_empty(),
        "nothing indexed"
    );

    let out = ash(&[
        "ingest",
        &index,
        &a,
        &b,
        "--quiet",
        "--errors",
        errors.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one bad record: {}",
        stderr(&out)
    );
    let mut got = ids(&search_json(
        &index,
        &["--code", "000000000000", "--k", "10"],
    ));
    got.sort();
    assert_eq!(got, ["s0-0", "s0-1", "s0-2", "s1-0"]);
    let error: Value =
        serde_json::from_str(std::fs::read_to_string(&errors).unwrap().trim()).unwrap();
    assert_eq!(error["id"], "s1-bad");
    assert_eq!(error["line"], 2);
    assert_eq!(error["input"], Value::from(b.clone()));
}

/// Kills an ingest after its first commit, reopens the index, and resumes
/// with --skip-existing: nothing committed is lost and nothing doubles.
#[test]
fn a_killed_ingest_loses_nothing_committed_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let index = init(tmp.path(), Some(&model(48)));
    let images = fixtures().join("images");
    let n = 4000;
    let mut lines = String::new();
    for i in 0..n {
        lines.push_str(&format!(
            "{{\"id\": \"k{i:05}\", \"image\": \"{}/case-{:02}.png\", \"grade\": {}}}\n",
            images.display(),
            i % 10,
            i % 5
        ));
    }
    let records = tmp.path().join("many.jsonl");
    std::fs::write(&records, lines).unwrap();
    let commit_every = 50;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ash-search"))
        .args([
            "ingest",
            &index,
            records.to_str().unwrap(),
            "--commit-every",
            &commit_every.to_string(),
            "--batch",
            "8",
            "--threads",
            "1",
            "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let meta = Path::new(&index).join("meta.json");
    let initial = std::fs::read(&meta).unwrap();
    let started = Instant::now();
    while std::fs::read(&meta).unwrap() == initial {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no commit in 60 s"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the first commit"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "killed before it finished (make n larger if this fails)"
    );

    let count = |index: &str| -> (u64, HashSet<String>) {
        let info: Value =
            serde_json::from_slice(&ok(ash(&["info", index, "--json"])).stdout).unwrap();
        let hits = search_json(index, &["--code", "000000000000", "-k", "100000"]);
        (
            info["documents"].as_u64().unwrap(),
            ids(&hits).into_iter().collect(),
        )
    };
    let (docs, seen) = count(&index);
    assert!(docs > 0 && docs < n, "{docs} committed");
    assert_eq!(docs % commit_every, 0, "only whole commits survive");
    assert_eq!(seen.len() as u64, docs, "no duplicates");
    let out = ok(ash(&[
        "ingest",
        &index,
        records.to_str().unwrap(),
        "--skip-existing",
        "--quiet",
    ]));
    assert!(
        stderr(&out).contains(&format!("skipped={docs}")),
        "{}",
        stderr(&out)
    );
    let (total, all) = count(&index);
    assert_eq!((total, all.len() as u64), (n, n));
}
