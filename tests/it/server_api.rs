//! `ash-search serve` over HTTP: every endpoint, and every refusal the API
//! promises (limits, token, image roots, timeouts, CORS, bad input).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::server::*;
use serde_json::json;

#[test]
fn every_endpoint_and_every_refusal() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let images = fixtures().join("images");
    let s = Server::start(
        &index,
        json!({"image_roots": [images], "max_body_bytes": 200_000, "max_k": 50}),
        &[],
    );

    // Health and stats.
    let (st, health) = s.get_json("/health");
    assert_eq!((st, health["status"].as_str()), (200, Some("ok")));
    assert_eq!(health["documents"], 11);
    let (_, stats) = s.get_json("/stats");
    assert_eq!(stats["documents"], 11);
    assert_eq!(stats["bits"], 48);
    assert_eq!(stats["encoder"]["name"], "ash-synfundus-48");
    assert_eq!(stats["execution_provider"], "CPUExecutionProvider");
    assert!(stats["index_bytes"].as_u64().unwrap() > 1000);
    assert!(stats["segments"].as_u64().unwrap() >= 1);

    // Search by an uploaded image: the code is the one `encode` gives.
    let png = std::fs::read(images.join("case-07.png")).unwrap();
    let out = ash(&[
        "encode",
        "--encoder",
        &format!("{ROOT}/plugin/models/ash-synfundus-48"),
        images.join("case-07.png").to_str().unwrap(),
    ]);
    let cli_code = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let (ct, body) = multipart(
        &[("k", "11"), ("filter", "grade:[0 TO 4]")],
        Some(("image", &png)),
    );
    let (st, res) = s.post("/search", &ct, body, &[]);
    assert_eq!(st, 200, "{res}");
    assert_eq!(res["query"]["code"], cli_code);
    let att = &res["query"]["attention"];
    assert_eq!(
        att["values"].as_array().unwrap().len() as u64,
        att["height"].as_u64().unwrap() * att["width"].as_u64().unwrap()
    );
    let hits = res["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 11, "every indexed image passes grade:[0 TO 4]");
    assert_eq!(hits[0]["distance"], 0);
    assert!(hits.iter().any(|h| h["id"] == "case-07"));
    assert!(hits[0]["thumbnail_url"]
        .as_str()
        .unwrap()
        .starts_with("/documents/"));
    assert!(
        hits[0]["fields"].get("image").is_none(),
        "server paths stay private"
    );

    // By code, by example, by text, hybrid.
    let (st, res) = s.search(json!({"code": cli_code, "k": 3}));
    assert_eq!(st, 200);
    assert_eq!(res["hits"][0]["distance"], 0);
    let (st, res) = s.search(json!({"like": "case-07", "k": 3}));
    assert_eq!(st, 200);
    assert_eq!(res["query"]["code"], cli_code);
    let (st, res) = s.search(json!({"text": "exudates", "k": 20}));
    assert_eq!(st, 200);
    assert!(res["hits"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["fields"]["report"].as_str().unwrap().contains("exudates")));
    let (st, res) = s.search(json!({"like": "case-02", "text": "exudates", "mode": "rrf", "k": 4}));
    assert_eq!((st, res["hits"].as_array().unwrap().len()), (200, 4));
    assert!(res.get("explain").is_none(), "explain only when asked");
    // Asked: the fusion depth, and per segment how the filter was applied.
    let (st, res) = s.search(json!({
        "like": "case-02", "text": "exudates", "mode": "rrf", "k": 4, "depth": 9,
        "filter": "grade:[1 TO 4]", "explain": true
    }));
    assert_eq!(st, 200);
    assert_eq!(res["explain"]["depth"], 9);
    let image = res["explain"]["image"].as_array().unwrap();
    assert!(!image.is_empty());
    for plan in image {
        assert!(
            ["allow-list", "candidates"].contains(&plan["strategy"].as_str().unwrap()),
            "{plan}"
        );
        assert!(
            (0.0..=1.0).contains(&plan["share"].as_f64().unwrap()),
            "{plan}"
        );
    }
    assert!(!res["explain"]["text"].as_array().unwrap().is_empty());

    // Bad searches: 4xx JSON errors.
    for (body, status, needle) in [
        (json!({"code": "zz"}), 400, "code"),
        (json!({"code": "0011"}), 400, "bits"),
        (json!({"like": "nope"}), 404, "no document has id"),
        (json!({"like": "case-01", "k": 0}), 400, "k must be"),
        (json!({"like": "case-01", "k": 51}), 400, "k must be"),
        (json!({"like": "case-01", "mode": "best"}), 400, "mode"),
        (json!({"like": "case-01", "depth": 0}), 400, "depth must be"),
        (
            json!({"like": "case-01", "depth": 501}),
            400,
            "depth must be",
        ),
        (
            json!({"like": "case-01", "k": 5, "depth": 4}),
            400,
            "at least k",
        ),
        (
            json!({"like": "case-01", "mode": "weighted", "weight": 2.0}),
            400,
            "weight",
        ),
        (
            json!({"like": "case-01", "code": cli_code}),
            400,
            "not several",
        ),
        (
            json!({"like": "case-01", "filter": "grade:[2 TO"}),
            400,
            "filter",
        ),
        (
            json!({"like": "case-01", "colour": "red"}),
            400,
            "unknown field",
        ),
        (json!({}), 400, "a search needs"),
    ] {
        let (st, res) = s.search(body.clone());
        assert_error(st, &res, status, needle);
    }
    let (st, res) = s.post("/search", "application/json", b"{not json".to_vec(), &[]);
    assert_error(st, &res, 400, "not a search request");
    let bad = std::fs::read(images.join("truncated.png")).unwrap();
    let (ct, body) = multipart(&[], Some(("image", &bad)));
    let (st, res) = s.post("/search", &ct, body, &[]);
    assert_error(st, &res, 422, "truncated PNG");
    let (ct, body) = multipart(&[("k", "many")], Some(("image", &png)));
    let (st, res) = s.post("/search", &ct, body, &[]);
    assert_error(st, &res, 400, "not a number");
    let (ct, body) = multipart(&[("colour", "red")], Some(("image", &png)));
    let (st, res) = s.post("/search", &ct, body, &[]);
    assert_error(st, &res, 400, "unknown form field");
    let (ct, _) = multipart(&[], None);
    for content_type in [ct.as_str(), "application/json"] {
        let (st, res) = s.declare_oversized("/search", content_type, 300_000);
        assert_error(st, &res, 413, "over the limit of 200000 bytes");
    }
    let (ct, mut body) = multipart(&[("k", "3")], Some(("image", &png)));
    body.truncate(body.len() / 2);
    let (st, res) = s.post("/search", &ct, body, &[]);
    assert!((400..500).contains(&st), "{st} {res}");

    // Documents, images, thumbnails.
    let (st, doc) = s.get_json("/documents/case-03");
    assert_eq!(st, 200);
    assert_eq!(doc["fields"]["grade"], 3);
    assert_eq!(doc["code"].as_str().unwrap().len(), 12);
    let (st, res) = s.get_json("/documents/no-such-case");
    assert_error(st, &res, 404, "no document has id");
    let (st, bytes, ct) = s.get("/documents/case-03/image");
    assert_eq!((st, ct.as_str()), (200, "image/png"));
    assert_eq!(bytes, std::fs::read(images.join("case-03.png")).unwrap());
    let (st, bytes, ct) = s.get("/documents/retina/thumbnail?size=64");
    assert_eq!((st, ct.as_str()), (200, "image/jpeg"));
    let thumb = image::load_from_memory(&bytes).unwrap();
    assert_eq!(thumb.width().max(thumb.height()), 64);
    for q in ["size=8", "size=5000", "size=big", "colour=red"] {
        let (st, res) = s.get_json(&format!("/documents/case-03/thumbnail?{q}"));
        assert_error(st, &res, 400, "");
    }

    // Unknown paths and methods.
    let (st, res) = s.get_json("/nope");
    assert_error(st, &res, 404, "no such endpoint");
    let (st, res) = s.get_json("/search");
    assert_error(st, &res, 405, "method");
    let (st, page, ct) = s.get("/");
    assert_eq!((st, ct.starts_with("text/html")), (200, true));
    assert!(String::from_utf8_lossy(&page).contains("ash-search"));
    let (st, spec) = s.get_json("/openapi.json");
    assert_eq!(st, 200);
    for path in [
        "/search",
        "/documents/{id}",
        "/documents/{id}/image",
        "/documents/{id}/thumbnail",
        "/ingest",
        "/health",
        "/stats",
    ] {
        assert!(
            spec["paths"].get(path).is_some(),
            "openapi.json lacks {path}"
        );
    }

    // CORS is off by default: no allow-origin header for another origin.
    let r = Server::agent()
        .get(format!("{}/health", s.base))
        .header("origin", "https://elsewhere.example")
        .call()
        .unwrap();
    assert_eq!(header(&r, "access-control-allow-origin"), "");
}

#[test]
fn images_are_served_only_from_the_roots() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    // A root that does not hold the fixture images.
    let other = tmp.path().join("other-root");
    std::fs::create_dir(&other).unwrap();
    let s = Server::start(&index, json!({"image_roots": [other]}), &[]);
    let (st, res) = s.get_json("/documents/case-01/image");
    assert_error(st, &res, 403, "outside");
    let (st, res) = s.get_json("/documents/case-01/thumbnail");
    assert_error(st, &res, 403, "outside");
    drop(s);
    // No roots at all.
    let s = Server::start(&index, json!({}), &[]);
    let (st, res) = s.get_json("/documents/case-01/image");
    assert_error(st, &res, 403, "no image roots");
    drop(s);
    // A symbolic link inside the root that points outside it.
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let secret = tmp.path().join("secret.png");
    std::fs::copy(fixtures().join("images/case-02.png"), &secret).unwrap();
    std::os::unix::fs::symlink(&secret, root.join("link.png")).unwrap();
    std::fs::copy(
        fixtures().join("images/case-04.png"),
        root.join("inside.png"),
    )
    .unwrap();
    let records = tmp.path().join("links.jsonl");
    std::fs::write(
        &records,
        format!(
            "{{\"id\": \"via-link\", \"image\": \"{0}/link.png\"}}\n{{\"id\": \"inside\", \"image\": \"{0}/inside.png\"}}\n",
            root.display()
        ),
    )
    .unwrap();
    assert!(
        ash(&["ingest", &index, records.to_str().unwrap(), "--quiet"])
            .status
            .success()
    );
    let s = Server::start(&index, json!({"image_roots": [root]}), &[]);
    let (st, res) = s.get_json("/documents/via-link/image");
    assert_error(st, &res, 403, "outside");
    let (st, _, _) = s.get("/documents/inside/image");
    assert_eq!(st, 200);
    // Over HTTP, an image path that climbs out of the root is refused.
    let (st, res) = s.post(
        "/ingest",
        "application/x-ndjson",
        b"{\"id\": \"climb\", \"image\": \"../secret.png\"}\n{\"id\": \"ok\", \"image\": \"inside.png\", \"grade\": 2}\n".to_vec(),
        &[("authorization", &s.bearer())],
    );
    assert_eq!(st, 200, "{res}");
    assert_eq!(
        (res["indexed"].as_u64(), res["failed"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(res["errors"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("outside"));
    assert_eq!(res["errors"][0]["id"], "climb");
}

#[test]
fn ingest_needs_the_token_and_new_documents_are_searchable_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let images = fixtures().join("images");
    let s = Server::start(
        &index,
        json!({"image_roots": [images], "reload_ms": 100}),
        &[("ASH_SERVE_TOKEN", "s3cret-s3cret-s3cret")],
    );
    let body = b"{\"id\": \"new-1\", \"image\": \"case-06.png\", \"grade\": 1, \"report\": \"fresh case\"}\n{\"id\": \"new-2\", \"image\": \"empty.png\"}\n{oops\n".to_vec();
    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong")],
        vec![("authorization", "s3cret-s3cret-s3cret")],
    ] {
        let (st, res) = s.post("/ingest", "application/x-ndjson", body.clone(), &headers);
        assert_error(st, &res, 401, "Bearer");
    }
    let (st, res) = s.get_json("/documents/new-1");
    assert_error(st, &res, 404, "no document");
    let (st, res) = s.post(
        "/ingest",
        "application/x-ndjson",
        body,
        &[("authorization", "Bearer s3cret-s3cret-s3cret")],
    );
    assert_eq!(st, 200, "{res}");
    assert_eq!(
        (res["indexed"].as_u64(), res["failed"].as_u64()),
        (Some(1), Some(2))
    );
    let reasons: Vec<&str> = res["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.iter().any(|r| r.contains("empty")), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("not a JSON object")),
        "{reasons:?}"
    );
    assert_eq!(res["errors"][1]["line"], 3);
    let (st, doc) = s.get_json("/documents/new-1");
    assert_eq!(
        (st, doc["fields"]["report"].as_str()),
        (200, Some("fresh case"))
    );
    let (_, res) = s.search(json!({"like": "new-1", "k": 1}));
    assert_eq!(res["hits"][0]["distance"], 0);

    // A commit by another process shows up without a restart.
    let records = tmp.path().join("outside.jsonl");
    std::fs::write(
        &records,
        format!(
            "{{\"id\": \"cli-1\", \"image\": \"{}/case-09.png\"}}\n",
            images.display()
        ),
    )
    .unwrap();
    assert!(
        ash(&["ingest", &index, records.to_str().unwrap(), "--quiet"])
            .status
            .success()
    );
    let started = Instant::now();
    loop {
        let (st, _) = s.get_json("/documents/cli-1");
        if st == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not reloaded after 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn unsafe_or_broken_configurations_do_not_start() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ash-search"));
        cmd.arg("serve")
            .arg(&index)
            .args(args)
            .env_remove("ASH_SERVE_TOKEN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let out = run(&["--addr", "0.0.0.0:0"], &[])
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without a token"));
    let out = run(&["--image-root", "/nonexistent/images"], &[])
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/images"));
    let cfg = tmp.path().join("typo.json");
    std::fs::write(&cfg, r#"{"max_body_byte": 10}"#).unwrap();
    let out = run(&["--config", cfg.to_str().unwrap()], &[])
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_body_byte"));
    // With a token, binding beyond loopback is allowed.
    let mut child = run(
        &["--addr", "0.0.0.0:0"],
        &[("ASH_SERVE_TOKEN", "a-token-of-24-characters")],
    );
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on http://0.0.0.0:"), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn slow_requests_time_out_with_a_json_error_and_cors_can_be_enabled() {
    let tmp = tempfile::tempdir().unwrap();
    let index = fixture_index(tmp.path());
    let s = Server::start(
        &index,
        json!({"request_timeout_ms": 1, "cors_origins": ["https://clinic.example"], "max_body_bytes": 64_000_000}),
        &[],
    );
    // A 3000×3000 PNG of one colour: a small upload (deflate packs it
    // about 1000:1) that takes far longer than 1 ms to decode and resize.
    let big = image::RgbImage::from_pixel(3000, 3000, image::Rgb([120, 40, 20]));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(big)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let (ct, body) = multipart(&[], Some(("image", &png)));
    // The deadline also covers reading the body: on a busy machine the
    // server may answer (and close) while the client is still writing it,
    // which the client sees as a broken pipe. Such a try says nothing
    // either way; one that gets its answer must get the 503.
    let answer = (0..20).find_map(|_| {
        let mut r = Server::agent()
            .post(format!("{}/search", s.base))
            .header("content-type", &ct)
            .send(&body[..])
            .ok()?;
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().ok()?;
        Some((
            status,
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        ))
    });
    let (st, res) = answer.expect("20 tries, and every one cut off before its answer");
    assert_error(st, &res, 503, "longer than 1 ms");
    let r = Server::agent()
        .get(format!("{}/health", s.base))
        .header("origin", "https://clinic.example")
        .call()
        .unwrap();
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        "https://clinic.example"
    );
}
