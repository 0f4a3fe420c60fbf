//! A real `ash-search serve` on loopback for the HTTP tests, and what
//! they share: the fixture index, requests, multipart bodies, error checks.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub fn fixtures() -> PathBuf {
    Path::new(ROOT).join("tests/fixtures/ingest")
}

pub fn ash(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ash-search"))
        .args(args)
        .output()
        .unwrap()
}

/// A new, empty index with the shipped example configuration and the
/// 48-bit model, after `edit` has changed the configuration.
pub fn new_index(dir: &Path, edit: impl FnOnce(&mut Value)) -> String {
    let mut c: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join("schemas/examples/index.json")).unwrap(),
    )
    .unwrap();
    c["hash"]["encoder"] = json!(format!("{ROOT}/plugin/models/ash-synfundus-48"));
    edit(&mut c);
    let cfg = dir.join("config.json");
    std::fs::write(&cfg, c.to_string()).unwrap();
    let index = dir.join("index").display().to_string();
    let out = ash(&["init", &index, "--schema", cfg.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    index
}

/// Every document of a 48-bit index of at most 100 (id → stored fields),
/// found by a k-NN search from the all-zero code.
pub fn all_docs(index: &str) -> std::collections::HashMap<String, Value> {
    let out = ash(&[
        "search",
        index,
        "--json",
        "--code",
        "000000000000",
        "-k",
        "100",
    ]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["id"].as_str().unwrap().to_string(), h["fields"].clone()))
        .collect()
}

/// An index of the fixture records (11 images, 48-bit ASH codes).
pub fn fixture_index(dir: &Path) -> String {
    let index = dir.join("index");
    let mut c: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join("schemas/examples/index.json")).unwrap(),
    )
    .unwrap();
    c["hash"]["encoder"] = json!(format!("{ROOT}/plugin/models/ash-synfundus-48"));
    let cfg = dir.join("config.json");
    std::fs::write(&cfg, c.to_string()).unwrap();
    let out = ash(&[
        "init",
        index.to_str().unwrap(),
        "--schema",
        cfg.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let records = fixtures().join("records.jsonl");
    let out = ash(&[
        "ingest",
        index.to_str().unwrap(),
        records.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the fixtures include bad records"
    );
    index.display().to_string()
}

/// A running server; killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// The bearer token: the configured one, or the one it printed.
    pub token: String,
}

impl Server {
    pub fn start(index: &str, config: Value, env: &[(&str, &str)]) -> Server {
        let cfg = Path::new(index).with_file_name(format!(
            "serve-{}.json",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut config = config;
        if config.get("addr").is_none() {
            config["addr"] = json!("127.0.0.1:0");
        }
        std::fs::write(&cfg, config.to_string()).unwrap();
        let configured = config["token"].as_str().map(str::to_string).or_else(|| {
            env.iter()
                .find(|(k, _)| *k == "ASH_SERVE_TOKEN")
                .map(|(_, v)| v.to_string())
        });
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ash-search"));
        cmd.args(["serve", index, "--config", cfg.to_str().unwrap()])
            .env_remove("ASH_SERVE_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        // Without a configured token the server makes one and prints it.
        let token = configured.unwrap_or_else(|| {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            line.trim()
                .strip_prefix("token: ")
                .unwrap_or_else(|| panic!("no token line: {line:?}"))
                .to_string()
        });
        // Keep reading stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Server { child, base, token }
    }

    /// The `Authorization` header for this server's token.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into()
    }

    pub fn get(&self, path: &str) -> (u16, Vec<u8>, String) {
        let mut r = Self::agent()
            .get(format!("{}{path}", self.base))
            .call()
            .unwrap();
        let ct = header(&r, "content-type");
        (r.status().as_u16(), r.body_mut().read_to_vec().unwrap(), ct)
    }

    pub fn get_json(&self, path: &str) -> (u16, Value) {
        let (s, body, _) = self.get(path);
        (
            s,
            serde_json::from_slice(&body).unwrap_or_else(|_| panic!("{path}: not JSON")),
        )
    }

    pub fn post(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = Self::agent()
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut r = req.send(&body[..]).unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text:?}")),
        )
    }

    /// Announces a body of `len` bytes and sends none of it: a server
    /// that checks the limit up front answers at once. (Sending the whole
    /// body races the server closing the connection after its answer.)
    pub fn declare_oversized(&self, path: &str, content_type: &str, len: usize) -> (u16, Value) {
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response).to_string();
        let status: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (
            status,
            serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {text:?}")),
        )
    }

    pub fn search(&self, body: Value) -> (u16, Value) {
        self.post(
            "/search",
            "application/json",
            body.to_string().into_bytes(),
            &[],
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn header(r: &ureq::http::Response<ureq::Body>, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// A multipart/form-data body with text fields and one file part.
pub fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "ashsearchtestboundary7d1";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    if let Some((name, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"q.png\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub fn assert_error(status: u16, body: &Value, want: u16, needle: &str) {
    assert_eq!(status, want, "{body}");
    let e = &body["error"];
    assert_eq!(e["status"], want, "{body}");
    assert!(e["code"].is_string());
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
}
