//! `ash-search codes …` end to end on generated .npy files, against brute force.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{brute_force, brute_knn, brute_range};
use ash_mih::code::BinaryCode;
use ash_mih::npy;

fn ash(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ash-search"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = ash(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn read_codes(path: &Path, bits: usize) -> Vec<BinaryCode> {
    let p = npy::read_packed(path).unwrap();
    (0..p.rows)
        .map(|i| BinaryCode::from_packed(p.row(i), bits).unwrap())
        .collect()
}

fn parse_json_lines(out: &str) -> Vec<(Vec<u32>, Vec<u32>)> {
    out.lines()
        .enumerate()
        .map(|(i, line)| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["query"], i);
            let ids = v["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect();
            let ds = v["distances"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect();
            (ids, ds)
        })
        .collect()
}

#[test]
fn build_knn_and_range_match_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    for (bits, spread) in [("64", "clustered"), ("36", "uniform"), ("12", "clustered")] {
        ok(&[
            "codes",
            "generate",
            "--n",
            "5000",
            "--bits",
            bits,
            "--spread",
            spread,
            "--centres",
            "40",
            "--output",
            &d("db.npy"),
        ]);
        ok(&[
            "codes",
            "generate",
            "--n",
            "25",
            "--bits",
            bits,
            "--spread",
            spread,
            "--centres",
            "40",
            "--seed",
            "77",
            "--output",
            &d("q.npy"),
        ]);
        let build = ash(&[
            "codes",
            "build",
            "--input",
            &d("db.npy"),
            "--bits",
            bits,
            "--output",
            &d("db.mih"),
        ]);
        assert!(build.status.success());
        assert!(String::from_utf8_lossy(&build.stderr).contains("codes=5000"));
        let bits: usize = bits.parse().unwrap();
        let db = read_codes(Path::new(&d("db.npy")), bits);
        let queries = read_codes(Path::new(&d("q.npy")), bits);

        let knn = ash(&[
            "codes",
            "knn",
            "--index",
            &d("db.mih"),
            "--queries",
            &d("q.npy"),
            "-k",
            "17",
            "--threads",
            "1",
            "--json",
        ]);
        assert!(knn.status.success());
        let summary = String::from_utf8_lossy(&knn.stderr);
        assert!(
            summary.contains("queries=25 ") && summary.contains("threads=1"),
            "{summary}"
        );
        let got = parse_json_lines(&String::from_utf8(knn.stdout).unwrap());
        assert_eq!(got.len(), queries.len());
        for (q, (ids, ds)) in queries.iter().zip(&got) {
            let want = brute_knn(&brute_force(&db, q, None, None), 17, bits as u32);
            assert_eq!(ids, &want.iter().map(|h| h.doc).collect::<Vec<_>>());
            assert_eq!(ds, &want.iter().map(|h| h.distance).collect::<Vec<_>>());
        }

        let range = ok(&[
            "codes",
            "range",
            "--index",
            &d("db.mih"),
            "--queries",
            &d("q.npy"),
            "--radius",
            "5",
            "--json",
        ]);
        for (q, (ids, _)) in queries.iter().zip(parse_json_lines(&range)) {
            let want = brute_range(&brute_force(&db, q, None, None), 5);
            assert_eq!(ids, want.iter().map(|h| h.doc).collect::<Vec<_>>());
        }
        let human = ok(&[
            "codes",
            "knn",
            "--index",
            &d("db.mih"),
            "--queries",
            &d("q.npy"),
            "-k",
            "2",
        ]);
        assert!(human.starts_with("  query   rank"), "{human}");
        assert_eq!(human.lines().count(), 1 + 2 * queries.len());
    }
}

#[test]
fn lengths_that_are_not_multiples_of_eight() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    ok(&[
        "codes",
        "generate",
        "--n",
        "300",
        "--bits",
        "12",
        "--output",
        &d("db.npy"),
    ]);
    ok(&[
        "codes",
        "build",
        "--input",
        &d("db.npy"),
        "--bits",
        "12",
        "--output",
        &d("db.mih"),
    ]);
    ok(&["codes", "verify", "--index", &d("db.mih")]);
    // 12-bit codes in 2-byte rows: --bits 9 is refused because bits 10..12 are set somewhere.
    let out = ash(&[
        "codes",
        "build",
        "--input",
        &d("db.npy"),
        "--bits",
        "9",
        "--output",
        &d("x.mih"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("trailing bits"));
    // 3-byte rows cannot hold 12-bit codes' 2 bytes.
    let out = ash(&[
        "codes",
        "build",
        "--input",
        &d("db.npy"),
        "--bits",
        "17",
        "--output",
        &d("x.mih"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("take 3 bytes"));
}

#[test]
fn bad_inputs_are_clear_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    std::fs::write(d("garbage.npy"), b"this is not numpy").unwrap();
    let out = ash(&[
        "codes",
        "build",
        "--input",
        &d("garbage.npy"),
        "--output",
        &d("x.mih"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("garbage.npy") && err.contains("not a readable .npy"),
        "{err}"
    );

    npyz::to_file_1d(d("floats.npy"), vec![1.0f32, 2.0]).unwrap();
    let out = ash(&[
        "codes",
        "build",
        "--input",
        &d("floats.npy"),
        "--output",
        &d("x.mih"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("floats.npy") && err.contains("expected uint8"),
        "{err}"
    );

    npyz::to_file_1d(d("flat.npy"), vec![1u8, 2]).unwrap();
    let out = ash(&[
        "codes",
        "build",
        "--input",
        &d("flat.npy"),
        "--output",
        &d("x.mih"),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected 2 dimensions"));

    ok(&[
        "codes",
        "generate",
        "--n",
        "100",
        "--bits",
        "64",
        "--output",
        &d("db.npy"),
    ]);
    ok(&[
        "codes",
        "build",
        "--input",
        &d("db.npy"),
        "--output",
        &d("db.mih"),
    ]);
    ok(&[
        "codes",
        "generate",
        "--n",
        "3",
        "--bits",
        "32",
        "--output",
        &d("q32.npy"),
    ]);
    let out = ash(&[
        "codes",
        "knn",
        "--index",
        &d("db.mih"),
        "--queries",
        &d("q32.npy"),
        "-k",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("q32.npy: query rows are 4 bytes"));

    // A truncated .npy and a damaged .mih.
    let full = std::fs::read(d("db.npy")).unwrap();
    std::fs::write(d("short.npy"), &full[..full.len() - 5]).unwrap();
    let out = ash(&[
        "codes",
        "build",
        "--input",
        &d("short.npy"),
        "--output",
        &d("x.mih"),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("short.npy"));
    let mut mih = std::fs::read(d("db.mih")).unwrap();
    let last = mih.len() - 20;
    mih[last] ^= 1;
    std::fs::write(d("bad.mih"), &mih).unwrap();
    let out = ash(&["codes", "verify", "--index", &d("bad.mih")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.mih: body checksum mismatch"));
    let out = ash(&[
        "codes",
        "knn",
        "--index",
        &d("missing.mih"),
        "--queries",
        &d("q32.npy"),
        "-k",
        "3",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.mih"));
}
