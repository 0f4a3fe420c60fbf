//! `ash-search init | ingest | search | info` end to end, every search mode
//! with --json, against brute force over the ingested records.

use std::path::Path;
use std::process::{Command, Output};

use ash_mih::code::BinaryCode;
use serde_json::Value;

fn ash(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ash-search"))
        .args(args)
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/examples/index.json");

/// 300 records: grade i % 5, eye alternating, code derived from i.
/// id, code, grade, eye, report mentions exudates.
type Row = (String, BinaryCode, i64, &'static str, bool);

fn write_records(path: &Path) -> Vec<Row> {
    let mut lines = String::new();
    let mut model = Vec::new();
    for i in 0..300u64 {
        let x = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((i % 7) * 0x1111_1111)) >> 16;
        let code = BinaryCode::from_words(&[x << 16], 48).unwrap();
        let grade = (i % 5) as i64;
        let eye = if i % 2 == 0 { "OD" } else { "OS" };
        let exudates = i % 3 == 0;
        let report = if exudates {
            "hard exudates and haemorrhages"
        } else {
            "unremarkable"
        };
        lines.push_str(&format!(
            "{{\"id\": \"r{i}\", \"code\": \"{}\", \"patient_id\": \"P{}\", \"eye\": \"{eye}\", \"grade\": {grade}, \"report\": \"{report}\", \"acquired\": \"2024-01-{:02}\"}}\n",
            code.to_hex(),
            i / 2,
            i % 28 + 1
        ));
        model.push((format!("r{i}"), code, grade, eye, exudates));
    }
    std::fs::write(path, lines).unwrap();
    model
}

#[test]
fn init_ingest_search_info() {
    let dir = tempfile::tempdir().unwrap();
    let idx = dir.path().join("idx");
    let idx = idx.to_str().unwrap();
    let records = dir.path().join("r.jsonl");
    let model = write_records(&records);
    assert!(ash(&["init", idx, "--schema", SCHEMA]).status.success());
    let again = ash(&["init", idx, "--schema", SCHEMA]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let out = ash(&["ingest", idx, records.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("indexed=300 failed=0"));

    let q = model[17].1;
    let brute = |keep: &dyn Fn(&Row) -> bool| {
        let mut v: Vec<(u32, String)> = model
            .iter()
            .filter(|m| keep(m))
            .map(|m| (m.1.distance(&q).unwrap(), m.0.clone()))
            .collect();
        v.sort();
        v
    };
    // Image only.
    let res = json_of(&ash(&[
        "search",
        idx,
        "--code",
        &q.to_hex(),
        "-k",
        "7",
        "--json",
    ]));
    let hits = res["hits"].as_array().unwrap();
    let want = brute(&|_| true);
    assert_eq!(hits.len(), 7);
    for (h, w) in hits.iter().zip(&want) {
        assert_eq!(h["distance"].as_u64().unwrap() as u32, w.0);
    }
    assert_eq!(hits[0]["id"], "r17");
    assert!(res["took_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(hits[0]["fields"]["grade"], 2);

    // Query by example + filter.
    let res = json_of(&ash(&[
        "search",
        idx,
        "--like",
        "r17",
        "--filter",
        "grade:[2 TO 4] AND eye:OS",
        "-k",
        "5",
        "--json",
    ]));
    let want = brute(&|m| m.2 >= 2 && m.3 == "OS");
    let got: Vec<u32> = res["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["distance"].as_u64().unwrap() as u32)
        .collect();
    assert_eq!(got, want[..5].iter().map(|w| w.0).collect::<Vec<_>>());
    for h in res["hits"].as_array().unwrap() {
        assert!(h["fields"]["grade"].as_i64().unwrap() >= 2 && h["fields"]["eye"] == "OS");
    }

    // Every hybrid mode, and text only.
    for mode in ["filter", "rrf", "weighted"] {
        let res = json_of(&ash(&[
            "search",
            idx,
            "--code",
            &q.to_hex(),
            "--text",
            "exudates",
            "--mode",
            mode,
            "-k",
            "5",
            "--json",
        ]));
        let hits = res["hits"].as_array().unwrap();
        assert_eq!(hits.len(), 5, "{mode}");
        let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
        if mode == "filter" {
            let want = brute(&|m| m.4);
            let got: Vec<u32> = hits
                .iter()
                .map(|h| h["distance"].as_u64().unwrap() as u32)
                .collect();
            assert_eq!(got, want[..5].iter().map(|w| w.0).collect::<Vec<_>>());
        } else {
            assert!(
                scores.windows(2).all(|w| w[0] >= w[1]),
                "{mode}: {scores:?}"
            );
        }
    }
    // --explain: how the filter was applied in each segment, and the depth.
    let res = json_of(&ash(&[
        "search",
        idx,
        "--code",
        &q.to_hex(),
        "--text",
        "exudates",
        "--filter",
        "grade:[2 TO 4]",
        "--mode",
        "rrf",
        "--depth",
        "7",
        "-k",
        "5",
        "--explain",
        "--json",
    ]));
    assert_eq!(res["explain"]["depth"], 7);
    for plan in res["explain"]["image"].as_array().unwrap() {
        assert!(
            plan["strategy"].is_string() && plan["share"].is_number(),
            "{plan}"
        );
    }
    for depth in ["0", "4"] {
        let out = ash(&[
            "search",
            idx,
            "--code",
            &q.to_hex(),
            "-k",
            "5",
            "--depth",
            depth,
        ]);
        assert_eq!(out.status.code(), Some(2), "--depth {depth}");
    }
    let res = json_of(&ash(&[
        "search", idx, "--text", "exudates", "-k", "1000", "--json",
    ]));
    assert_eq!(
        res["hits"].as_array().unwrap().len(),
        model.iter().filter(|m| m.4).count()
    );
    let res = json_of(&ash(&[
        "search",
        idx,
        "--code",
        &q.to_hex(),
        "--radius",
        "3",
        "-k",
        "1000",
        "--json",
    ]));
    assert_eq!(
        res["hits"].as_array().unwrap().len(),
        brute(&|_| true).iter().filter(|w| w.0 <= 3).count()
    );

    // Info.
    let info = json_of(&ash(&["info", idx, "--json"]));
    assert_eq!(info["documents"], 300);
    assert_eq!(info["bits"], 48);
    assert!(info["bytes_by_extension"]["mih"].as_u64().unwrap() > 300 * 6);

    // Bad records go to the errors file; the rest are indexed; ids replace.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\": \"r1\", \"code\": \"ffffffffffff\", \"grade\": 9}\n{\"id\": \"x\", \"code\": \"00\"}\n{\"id\": \"y\", \"colour\": \"red\", \"code\": \"000000000000\"}\n{broken\n{\"id\": \"z\", \"image\": \"a.png\", \"code\": \"000000000000\"}\n",
    )
    .unwrap();
    let errors = dir.path().join("errors.jsonl");
    let out = ash(&[
        "ingest",
        idx,
        bad.to_str().unwrap(),
        "--errors",
        errors.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let errs: Vec<Value> = std::fs::read_to_string(&errors)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        errs.iter()
            .map(|e| e["line"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![2, 3, 4, 5]
    );
    assert!(errs[0]["reason"]
        .as_str()
        .unwrap()
        .contains("expected 12 hex digits, got 2"));
    assert!(errs[1]["reason"]
        .as_str()
        .unwrap()
        .contains("unknown field \"colour\""));
    assert!(errs
        .iter()
        .all(|e| e["input"].as_str().unwrap().ends_with("bad.jsonl")));
    let info = json_of(&ash(&["info", idx, "--json"]));
    assert_eq!(info["documents"], 300, "r1 replaced, not duplicated");
    let res = json_of(&ash(&[
        "search",
        idx,
        "--code",
        "ffffffffffff",
        "-k",
        "1",
        "--json",
    ]));
    // Every other code has its low 16 bits clear, so r1's new code is unique.
    assert_eq!(res["hits"][0]["id"], "r1");
    assert_eq!(res["hits"][0]["distance"], 0);
    assert_eq!(res["hits"][0]["fields"]["grade"], 9);

    // Clear errors for bad queries.
    for (args, msg) in [
        (vec!["search", idx, "--code", "abc"], "hex digits"),
        (vec!["search", idx, "--like", "nope"], "no document has id"),
        (
            vec![
                "search",
                idx,
                "--code",
                "000000000000",
                "--filter",
                "grade:[2 TO",
            ],
            "--filter",
        ),
        (vec!["search", idx], "a search needs"),
        (
            vec!["search", "/nonexistent/index", "--code", "00"],
            "not an ash-search index",
        ),
    ] {
        let out = ash(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(msg),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn bad_configurations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (config, msg) in [
        (
            r#"{"fields": [{"name": "x", "type": "keyword", "stored": true}], "hash": {"name": "code", "bits": 12}}"#,
            "needs a field \"id\"",
        ),
        (
            r#"{"fields": [{"name": "id", "type": "keyword", "stored": true}], "hash": {"name": "code", "bits": 300}}"#,
            "index.schema.json",
        ),
        (
            r#"{"fields": [{"name": "id", "type": "blob"}], "hash": {"name": "code", "bits": 12}}"#,
            "index.schema.json",
        ),
        (
            r#"{"fields": [{"name": "id", "type": "keyword", "stored": true}, {"name": "id", "type": "text"}], "hash": {"name": "code", "bits": 12}}"#,
            "used twice",
        ),
        ("not json", "not JSON"),
    ] {
        let path = dir.path().join("c.json");
        std::fs::write(&path, config).unwrap();
        let out = ash(&[
            "init",
            dir.path().join("i").to_str().unwrap(),
            "--schema",
            path.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(msg) && err.contains("c.json"), "{err}");
    }
}
