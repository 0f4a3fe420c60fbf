//! The server and the CLI as an attacker or a careless user would try
//! them, against the real binary and a real server on loopback. Every test
//! ends by checking that the server still answers `/health`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::server::*;
use serde_json::{json, Value};

fn healthy(s: &Server) {
    let (st, h) = s.get_json("/health");
    assert_eq!((st, h["status"].as_str()), (200, Some("ok")), "{h}");
}

/// Sends raw bytes and returns the status line's code and the body.
fn raw(s: &Server, request: &str) -> (u16, String) {
    let addr = s.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// `ash-search ingest INDEX RECORDS` with an errors file: the exit code and
/// the error records.
fn ingest_errors(index: &str, records: &Path) -> (Option<i32>, Vec<Value>) {
    let errors = records.with_extension("errors.jsonl");
    let out = ash(&[
        "ingest",
        index,
        records.to_str().unwrap(),
        "--errors",
        errors.to_str().unwrap(),
        "--quiet",
    ]);
    let lines = std::fs::read_to_string(&errors)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out.status.code(), lines)
}

/// `ash-search init DIR` with the example configuration.
fn init_example(dir: &Path) -> std::process::Output {
    let cfg = Path::new(ROOT).join("schemas/examples/index.json");
    ash(&[
        "init",
        dir.to_str().unwrap(),
        "--schema",
        cfg.to_str().unwrap(),
    ])
}

/// A copy of a shipped plugin (the model linked, not copied) whose
/// manifest `edit` changes.
fn edited_plugin(dir: &Path, shipped: &str, edit: impl FnOnce(&mut Value)) {
    let src = Path::new(ROOT).join("plugin/models").join(shipped);
    std::fs::create_dir(dir).unwrap();
    std::os::unix::fs::symlink(src.join("model.onnx"), dir.join("model.onnx")).unwrap();
    let mut m: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("manifest.json")).unwrap()).unwrap();
    edit(&mut m);
    std::fs::write(dir.join("manifest.json"), m.to_string()).unwrap();
}

fn nested(levels: usize) -> String {
    format!("{}a{}", "(".repeat(levels), ")".repeat(levels))
}

#[test]
fn a_deeply_nested_query_is_refused_by_the_server_and_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let s = Server::start(&index, json!({}), &[]);
    // The row of the report: 20,000 levels, 40 KB.
    let deep = nested(20_000);
    for field in ["text", "filter"] {
        let (st, res) = s.search(json!({field: deep, "like": "case-01"}));
        assert_error(st, &res, 400, "over the limit of 4096 bytes");
        assert!(res.to_string().len() < 2_000, "the query is not echoed");
        healthy(&s);
        // Short enough, too deep.
        let (st, res) = s.search(json!({field: nested(1_000), "like": "case-01"}));
        assert_error(st, &res, 400, "levels deep");
        let nots = format!("{}exudates", "NOT ".repeat(500));
        let (st, res) = s.search(json!({field: nots, "like": "case-01"}));
        assert_error(st, &res, 400, "levels deep");
        healthy(&s);
    }
    let (st, res) = s.search(json!({"text": "a ".repeat(5_000)}));
    assert_error(st, &res, 400, "over the limit of 4096 bytes");
    // Within the limits a query still works.
    let (st, _) = s.search(json!({"text": nested(32).replace('a', "exudates")}));
    assert_eq!(st, 200);
    healthy(&s);
    for (query, needle) in [(deep, "over the limit"), (nested(1_000), "levels deep")] {
        let out = ash(&["search", &index, "--text", &query]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle) && !err.contains("overflow"), "{err}");
    }
}

#[test]
fn another_page_cannot_write_or_read_and_the_token_is_checked_before_the_body() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let images = fixtures().join("images");
    let s = Server::start(&index, json!({"image_roots": [images]}), &[]);
    assert_eq!(s.token.len(), 64, "a 256-bit token is made and printed");
    let before = s.get_json("/documents/case-01").1;
    let body = br#"{"id":"case-01","report":"x"}"#.to_vec();
    // The page's no-cors fetch: no token, another origin.
    let (st, res) = s.post(
        "/ingest",
        "text/plain",
        body.clone(),
        &[("origin", "https://evil.example")],
    );
    assert_error(st, &res, 403, "origin");
    // Even with the token, another origin is refused.
    let bearer = s.bearer();
    let (st, res) = s.post(
        "/ingest",
        "text/plain",
        body.clone(),
        &[
            ("origin", "https://evil.example"),
            ("authorization", &bearer),
        ],
    );
    assert_error(st, &res, 403, "origin");
    // No origin, no token.
    let (st, res) = s.post("/ingest", "text/plain", body.clone(), &[]);
    assert_error(st, &res, 401, "Bearer");
    assert_eq!(
        s.get_json("/documents/case-01").1,
        before,
        "nothing replaced"
    );
    // Reads from other sites' pages (an <img>, a <script>) are refused.
    for (path, headers) in [
        (
            "/documents/case-01/image",
            "Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\n",
        ),
        ("/documents/case-01", "Origin: null\r\n"),
        ("/stats", "Origin: http://127.0.0.1.evil.example\r\n"),
    ] {
        let (st, _) = raw(
            &s,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\n{headers}Connection: close\r\n\r\n",
                s.base.trim_start_matches("http://")
            ),
        );
        assert_eq!(st, 403, "{path}");
    }
    // DNS rebinding: the attacker's name as Host.
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let (st, body) = raw(
        &s,
        &format!(
            "GET /stats HTTP/1.1\r\nHost: rebind.evil.example:{port}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(st, 403, "{body}");
    assert!(body.contains("host_not_allowed"));
    // The page itself (same origin) still works.
    let (st, _) = raw(
        &s,
        &format!(
            "GET /stats HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\nSec-Fetch-Site: same-origin\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(st, 200);
    // The token is checked before the body is read: a request that
    // announces 10 MB and sends none is answered at once.
    let started = Instant::now();
    let (st, _) = raw(
        &s,
        &format!(
            "POST /ingest HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-ndjson\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(st, 401);
    assert!(started.elapsed() < Duration::from_secs(5));
    // The printed address sets the token cookie; a wrong token does not.
    let (st, _) = raw(
        &s,
        &format!(
            "GET /?token=wrong HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(st, 401);
    healthy(&s);
}

#[test]
fn reads_can_need_the_token_too_and_the_page_gets_it_as_a_cookie() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let s = Server::start(&index, json!({"auth": "all"}), &[]);
    let (st, res) = s.get_json("/documents/case-01");
    assert_error(st, &res, 401, "Bearer");
    let (st, res) = s.search(json!({"like": "case-01"}));
    assert_error(st, &res, 401, "Bearer");
    let (st, _, _) = s.get("/");
    assert_eq!(st, 200, "the page itself holds no data");
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let addr = format!("127.0.0.1:{port}");
    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /?token={} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
        s.token
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 303"), "{text}");
    let cookie = text
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let pair = cookie.split(';').next().unwrap();
    let (st, body) = raw(
        &s,
        &format!("GET /documents/case-01 HTTP/1.1\r\nHost: {addr}\r\nCookie: {pair}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(st, 200, "{body}");
    healthy(&s);
}

#[test]
fn an_id_over_the_limit_is_refused_every_time() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let records = tmp.path().join("long.jsonl");
    let id = "i".repeat(70_000);
    let line = json!({"id": id, "code": "0123456789ab", "report": "x"}).to_string();
    std::fs::write(&records, format!("{line}\n")).unwrap();
    for _ in 0..2 {
        let (code, errors) = ingest_errors(&index, &records);
        assert_eq!(code, Some(1));
        let e = &errors[0];
        assert!(
            e["reason"]
                .as_str()
                .unwrap()
                .contains("over the limit of 1024"),
            "{e}"
        );
    }
    let info: Value = serde_json::from_slice(&ash(&["info", &index, "--json"]).stdout).unwrap();
    assert_eq!(info["documents"], 11, "nothing was added");
}

#[test]
fn a_cut_photograph_is_refused_not_indexed_in_part() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let real = std::fs::read(fixtures().join("images/retina.jpg")).unwrap();
    let cut = tmp.path().join("cut.jpg");
    std::fs::write(&cut, &real[..real.len() / 5]).unwrap();
    let png = std::fs::read(fixtures().join("images/case-03.png")).unwrap();
    let mut bad_crc = png.clone();
    let mid = bad_crc.len() / 2;
    bad_crc[mid] ^= 0x40;
    std::fs::write(tmp.path().join("crc.png"), &bad_crc).unwrap();
    std::fs::write(tmp.path().join("no-iend.png"), &png[..png.len() - 12]).unwrap();
    let records = tmp.path().join("cut.jsonl");
    std::fs::write(
        &records,
        "{\"id\": \"cut\", \"image\": \"cut.jpg\"}\n{\"id\": \"crc\", \"image\": \"crc.png\"}\n{\"id\": \"no-iend\", \"image\": \"no-iend.png\"}\n",
    )
    .unwrap();
    let (code, reasons) = ingest_errors(&index, &records);
    assert_eq!(code, Some(1));
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0]["reason"]
        .as_str()
        .unwrap()
        .contains("truncated JPEG"));
    assert!(reasons[1]["reason"].as_str().unwrap().contains("CRC"));
    assert!(reasons[2]["reason"].as_str().unwrap().contains("IEND"));
    // The same over HTTP and through encode.
    let s = Server::start(&index, json!({}), &[]);
    let (ct, body) = multipart(&[], Some(("image", &real[..real.len() / 5])));
    let (st, res) = s.post("/search", &ct, body, &[]);
    assert_error(st, &res, 422, "truncated JPEG");
    let out = ash(&[
        "encode",
        "--encoder",
        &format!("{ROOT}/plugin/models/ash-synfundus-48"),
        cut.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated JPEG"));
    healthy(&s);
}

#[test]
fn encode_into_a_closed_pipe_ends_quietly() {
    let images = fixtures().join("images");
    let files: Vec<String> = (0..10)
        .map(|i| {
            images
                .join(format!("case-{i:02}.png"))
                .display()
                .to_string()
        })
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ash-search"))
        .args([
            "encode",
            "--encoder",
            &format!("{ROOT}/plugin/models/ash-synfundus-48"),
        ])
        .args(&files)
        .args(["--batch", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -1`: read one line, then close the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn path_traversal_is_refused_in_every_path_like_parameter() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let images = fixtures().join("images");
    let s = Server::start(&index, json!({"image_roots": [images]}), &[]);
    for id in [
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%2e%2e",
        "..",
        "%2Fetc%2Fpasswd",
        "case-01%00",
    ] {
        for suffix in ["", "/image", "/thumbnail"] {
            let (st, _) = s.get_json(&format!("/documents/{id}{suffix}"));
            assert!(st == 404 || st == 400, "{id}{suffix}: {st}");
        }
    }
    let (st, _) = s.get_json("/documents/../../etc/passwd");
    assert_eq!(st, 404);
    let body = b"{\"id\": \"p1\", \"image\": \"../../../../etc/passwd\"}\n{\"id\": \"p2\", \"image\": \"/etc/passwd\"}\n{\"id\": \"p3\", \"image\": \"case-01.png/../../records.jsonl\"}\n".to_vec();
    let bearer = s.bearer();
    let (st, res) = s.post(
        "/ingest",
        "application/x-ndjson",
        body,
        &[("authorization", &bearer)],
    );
    assert_eq!(st, 200, "{res}");
    assert_eq!(res["indexed"], 0, "{res}");
    assert_eq!(res["failed"], 3, "{res}");
    healthy(&s);
}

#[test]
fn oversized_bodies_are_refused_on_every_route() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let s = Server::start(
        &index,
        json!({"max_body_bytes": 100_000, "max_json_bytes": 4_096}),
        &[],
    );
    let bearer = s.bearer();
    let port = s.base.rsplit(':').next().unwrap().to_string();
    for (method, path, auth) in [
        ("POST", "/search", false),
        ("POST", "/ingest", true),
        ("GET", "/documents/case-01", false),
        ("GET", "/stats", false),
        ("GET", "/", false),
    ] {
        let auth = if auth {
            format!("Authorization: {bearer}\r\n")
        } else {
            String::new()
        };
        let (st, body) = raw(
            &s,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Content-Type: application/json\r\nContent-Length: 200000\r\nConnection: close\r\n\r\n"
            ),
        );
        assert_eq!(st, 413, "{method} {path}: {body}");
    }
    // Under the body limit but over the JSON search limit.
    let (st, res) = s.post(
        "/search",
        "application/json",
        json!({"text": "a".repeat(10_000)}).to_string().into_bytes(),
        &[],
    );
    assert_error(st, &res, 413, "JSON search request");
    healthy(&s);
}

#[test]
fn slow_header_clients_are_cut_off_and_others_are_served() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let s = Server::start(&index, json!({"header_timeout_ms": 500}), &[]);
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut slow: Vec<TcpStream> = (0..32)
        .map(|_| {
            let mut c = TcpStream::connect(&addr).unwrap();
            c.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .unwrap();
            c
        })
        .collect();
    // An idle connection that sent nothing at all.
    slow.push(TcpStream::connect(&addr).unwrap());
    let started = Instant::now();
    healthy(&s);
    assert!(started.elapsed() < Duration::from_secs(2));
    std::thread::sleep(Duration::from_millis(1_500));
    for c in &mut slow {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = Vec::new();
        // The server closed it: read ends (with or without a 408).
        let read = c.read_to_end(&mut buf);
        assert!(read.is_ok(), "{read:?}");
    }
    healthy(&s);
}

#[test]
fn concurrent_huge_uploads_are_refused_without_exhausting_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let s = Server::start(&index, json!({"max_concurrent_images": 2}), &[]);
    // 16,000 × 6,000 grey pixels of one value: a small PNG, 96 megapixels.
    let big = image::GrayImage::from_pixel(16_000, 6_000, image::Luma([90]));
    let mut png = Vec::new();
    image::DynamicImage::ImageLuma8(big)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let (ct, body) = multipart(&[("k", "3")], Some(("image", &png)));
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut request = format!(
        "POST /search HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    // A refused upload may be answered before its body is read, and the
    // connection closed under the sender: that counts as refused too.
    let answers: Vec<Option<(u16, String)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..64)
            .map(|_| {
                scope.spawn(|| {
                    let mut c = TcpStream::connect(&addr).unwrap();
                    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    let _ = c.write_all(&request);
                    let mut response = Vec::new();
                    let _ = c.read_to_end(&mut response);
                    let text = String::from_utf8_lossy(&response).to_string();
                    let status = text.split_whitespace().nth(1)?.parse().ok()?;
                    Some((status, text))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (st, text) in answers.iter().flatten() {
        assert!(*st == 422 || *st == 503, "{st} {text}");
        if *st == 422 {
            assert!(text.contains("over the limit"), "{text}");
        }
    }
    assert!(
        answers.iter().flatten().any(|(st, _)| *st == 422),
        "no upload was decoded"
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    assert!(peak_kib < 1_500_000, "server peak {peak_kib} KiB");
    healthy(&s);
}

/// A results page asks for a dozen thumbnails at once; with fewer image
/// slots than that they wait for a slot rather than fail.
#[test]
fn a_page_of_thumbnails_waits_for_image_slots() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let images = fixtures().join("images");
    let s = Server::start(
        &index,
        json!({"image_roots": [images], "max_concurrent_images": 1}),
        &[],
    );
    let ids: Vec<String> = (0..10).map(|i| format!("case-{i:02}")).collect();
    let statuses: Vec<(String, u16)> = std::thread::scope(|scope| {
        let handles: Vec<_> = ids
            .iter()
            .chain(ids.iter())
            .map(|id| {
                let s = &s;
                scope.spawn(move || {
                    let (st, _, _) = s.get(&format!("/documents/{id}/thumbnail?size=1024"));
                    (id.clone(), st)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (id, st) in &statuses {
        assert_eq!(*st, 200, "thumbnail of {id}");
    }
    healthy(&s);
}

#[test]
fn an_ingest_past_its_deadline_indexes_nothing_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let images = fixtures().join("images");
    let s = Server::start(
        &index,
        json!({"image_roots": [images], "ingest_timeout_ms": 1, "reload_ms": 50}),
        &[],
    );
    let mut body = String::new();
    for i in 0..200 {
        body.push_str(&format!(
            "{{\"id\": \"late-{i}\", \"image\": \"case-0{}.png\"}}\n",
            i % 10
        ));
    }
    let bearer = s.bearer();
    let (st, res) = s.post(
        "/ingest",
        "application/x-ndjson",
        body.into_bytes(),
        &[("authorization", &bearer)],
    );
    assert_error(st, &res, 503, "nothing was indexed");
    std::thread::sleep(Duration::from_millis(500));
    let (st, _) = s.get_json("/documents/late-0");
    assert_eq!(st, 404, "the refused ingest did not commit later");
    assert_eq!(s.get_json("/health").1["documents"], 11);
    healthy(&s);
}

#[test]
fn a_failing_reload_turns_health_degraded_until_it_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let s = Server::start(&index, json!({"reload_ms": 50}), &[]);
    healthy(&s);
    let meta = Path::new(&index).join("meta.json");
    let good = std::fs::read(&meta).unwrap();
    std::fs::write(&meta, b"{ damaged").unwrap();
    let started = Instant::now();
    let degraded = loop {
        let (st, h) = s.get_json("/health");
        if st == 503 {
            break h;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never degraded"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(degraded["status"], "degraded");
    assert!(degraded["reason"]
        .as_str()
        .unwrap()
        .contains("cannot be reloaded"));
    std::fs::write(&meta, good).unwrap();
    let started = Instant::now();
    while s.get_json("/health").0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never recovered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    healthy(&s);
}

#[test]
fn damaged_code_tables_are_named_by_verify_and_by_search() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let out = ash(&["verify", &index]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mih = std::fs::read_dir(&index)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "mih"))
        .unwrap();
    let segment = mih.file_stem().unwrap().to_string_lossy().to_string();
    let mut bytes = std::fs::read(&mih).unwrap();
    // A flipped bit in the code array: only the body checksum sees it.
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    std::fs::write(&mih, &bytes).unwrap();
    let out = ash(&["verify", &index]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("DAMAGED") && text.contains("checksum"),
        "{text}"
    );
    assert!(text.contains(&segment[..8]), "{text}");
    // A damaged header: searches fail naming the segment.
    bytes[20] ^= 0xFF;
    std::fs::write(&mih, &bytes).unwrap();
    let out = ash(&["search", &index, "--code", "0123456789ab"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("segment") && err.contains(&segment[..8]),
        "{err}"
    );
}

#[test]
fn an_interrupted_init_can_be_redone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("index");
    assert!(init_example(&dir).status.success());
    // Interrupted after tantivy's files, before ash-index.json; a stray
    // temporary file from the atomic write is left too.
    std::fs::remove_file(dir.join("ash-index.json")).unwrap();
    std::fs::write(dir.join(".ash-index.json.x1y2z3.tmp"), b"{").unwrap();
    let out = init_example(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(ash(&["info", dir.to_str().unwrap()]).status.success());
    // A finished index is not made again.
    assert_eq!(init_example(&dir).status.code(), Some(2));
}

#[test]
fn two_ingests_with_different_encoders_cannot_both_pin() {
    let tmp = tempfile::tempdir().unwrap();
    // Two 48-bit plugins whose manifests differ.
    let mut plugins = Vec::new();
    for version in ["0.0.97", "0.0.98"] {
        let dir = tmp.path().join(format!("plugin-{version}"));
        edited_plugin(&dir, "ash-synfundus-48", |m| m["version"] = json!(version));
        plugins.push(dir);
    }
    let index = tmp.path().join("index");
    assert!(init_example(&index).status.success());
    let records = fixtures().join("records.jsonl");
    let children: Vec<_> = plugins
        .iter()
        .map(|p| {
            Command::new(env!("CARGO_BIN_EXE_ash-search"))
                .args(["ingest", index.to_str().unwrap(), records.to_str().unwrap()])
                .args([
                    "--encoder",
                    p.to_str().unwrap(),
                    "--quiet",
                    "--errors",
                    "/dev/null",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let info: Value =
        serde_json::from_slice(&ash(&["info", index.to_str().unwrap(), "--json"]).stdout).unwrap();
    let pinned = info["encoder"]["version"].as_str().unwrap().to_string();
    for (out, version) in outs.iter().zip(["0.0.97", "0.0.98"]) {
        let err = String::from_utf8_lossy(&out.stderr);
        // Exit 1: the fixtures hold bad records; 2: refused as a whole.
        if version == pinned {
            assert_eq!(out.status.code(), Some(1), "{err}");
        } else {
            assert_eq!(out.status.code(), Some(2), "{err}");
            assert!(
                err.contains("not comparable")
                    || err.contains("writing to this index")
                    || err.contains("lock"),
                "{err}"
            );
        }
    }
}

#[test]
fn onnx_runtime_1_30_encodes_a_command_line_of_thousands_of_files() {
    let lib = Path::new(ROOT).join(".cache/onnxruntime-1.30.0/libonnxruntime.so.1.30.0");
    assert!(
        lib.is_file(),
        "{} is missing: run `make ort-old` (make test does)",
        lib.display()
    );
    // 2,500 file names, over 100 KB of command line: ONNX Runtime 1.30
    // walks it recursively while it starts (80 KB overflowed 8 MiB).
    let file = fixtures().join("images/case-01.png").display().to_string();
    let files = vec![file.as_str(); 2_500];
    assert!(files.iter().map(|f| f.len() + 1).sum::<usize>() > 100_000);
    let encoder = format!("{ROOT}/plugin/models/ash-synfundus-48");
    let out = Command::new(env!("CARGO_BIN_EXE_ash-search"))
        .args(["encode", "--encoder", &encoder, "--device", "cpu"])
        .args(&files)
        .env("ORT_DYLIB_PATH", &lib)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let codes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 2_500);
    let reference = ash(&["encode", "--encoder", &encoder, &file]);
    let want = String::from_utf8_lossy(&reference.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(codes.iter().all(|c| *c == want), "1.30 and 1.31 disagree");
}

#[test]
fn nan_model_outputs_are_an_error_not_a_code() {
    let tmp = tempfile::tempdir().unwrap();
    let plugin = tmp.path().join("plugin");
    // A standard deviation that is positive but so small that 1/std is
    // infinite: every input becomes ±inf or NaN, and so do the outputs.
    edited_plugin(&plugin, "ash-synfundus-12", |m| {
        m["input"]["std"] = json!([2e-45])
    });
    let images = fixtures().join("images");
    let out = ash(&[
        "encode",
        "--encoder",
        plugin.to_str().unwrap(),
        images.join("case-01.png").to_str().unwrap(),
        images.join("case-02.png").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no code was printed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("holds NaN").count()
            + err.matches("holds inf").count()
            + err.matches("holds -inf").count(),
        2,
        "{err}"
    );
    // A mean beyond f32's range is refused when the manifest is read.
    let plugin = tmp.path().join("plugin-2");
    edited_plugin(&plugin, "ash-synfundus-12", |m| {
        m["input"]["mean"] = json!([1e39])
    });
    let out = ash(&[
        "encode",
        "--encoder",
        plugin.to_str().unwrap(),
        images.join("case-01.png").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a finite"));
}

#[test]
fn served_images_and_record_lines_have_size_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let images = fixtures().join("images");
    let s = Server::start(
        &index,
        json!({"image_roots": [images], "max_image_bytes": 1_000}),
        &[],
    );
    for suffix in ["image", "thumbnail"] {
        let (st, res) = s.get_json(&format!("/documents/case-01/{suffix}"));
        assert_error(st, &res, 413, "over the limit of 1000 bytes");
    }
    healthy(&s);
    // A JSONL line of 5 MB is refused as a record; the next line is read.
    let records = tmp.path().join("long-line.jsonl");
    let long = json!({"id": "long", "report": "x".repeat(5 << 20), "code": "0123456789ab"});
    std::fs::write(
        &records,
        format!("{long}\n{{\"id\": \"after\", \"code\": \"0123456789ab\"}}\n"),
    )
    .unwrap();
    let (code, errors) = ingest_errors(&index, &records);
    assert_eq!((code, errors.len()), (Some(1), 1));
    let e = &errors[0];
    assert_eq!(e["line"], 1);
    assert!(
        e["reason"].as_str().unwrap().contains("line longer than"),
        "{e}"
    );
    let info: Value = serde_json::from_slice(&ash(&["info", &index, "--json"]).stdout).unwrap();
    assert_eq!(info["documents"], 12, "the line after it was indexed");
}
