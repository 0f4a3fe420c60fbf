//! The server half of `make bench`: `POST /search` under load on loopback.
//!
//! An index of N records (default 1,000,000) with clustered 48-bit codes
//! and metadata, pinned to the shipped ASH encoder; the server in this
//! process; C client threads with keep-alive connections for D seconds per
//! scenario: code queries, image uploads (decode and encode included), and
//! code queries while `POST /ingest` adds batches of records. Prints
//! requests/s, p50/p99 latency and errors, then checks that every ingested
//! document is searchable.
//!
//! cargo run --release --example bench_serve [N] [SECONDS] [CLIENTS]

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ash_encoder::EncoderOptions;
use ash_mih::synth::{generate, Spread};
use ash_search::config::{EncoderRef, IndexConfig};
use ash_search::ingest::{self, IngestOptions, Source};
use ash_search::server::{self, App, ServeConfig};
use ash_search::store::Store;
use serde_json::{json, Value};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const REPORTS: [&str; 5] = [
    "no diabetic retinopathy",
    "a few microaneurysms",
    "hard exudates and haemorrhages",
    "haemorrhages in four quadrants, venous beading",
    "neovascularisation at the disc",
];

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

struct Load {
    requests: usize,
    errors: usize,
    seconds: f64,
    latencies_ms: Vec<f64>,
}

/// `clients` threads send `make(i)` requests for `seconds`.
fn load(
    base: &str,
    clients: usize,
    seconds: f64,
    make: impl Fn(usize, &ureq::Agent, &str) -> u16 + Sync,
) -> Load {
    let stop = Instant::now() + Duration::from_secs_f64(seconds);
    let results: Vec<(Vec<f64>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let make = &make;
                s.spawn(move || {
                    let agent = agent();
                    let mut lat = Vec::new();
                    let mut errors = 0;
                    let mut i = c * 1_000_003;
                    while Instant::now() < stop {
                        let t = Instant::now();
                        let status = make(i, &agent, base);
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                        if status != 200 {
                            errors += 1;
                        }
                        i += 1;
                    }
                    (lat, errors)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut latencies_ms: Vec<f64> = results
        .iter()
        .flat_map(|(l, _)| l.iter().copied())
        .collect();
    let errors = results.iter().map(|(_, e)| e).sum();
    let requests = latencies_ms.len();
    latencies_ms.sort_by(|a, b| a.total_cmp(b));
    Load {
        requests,
        errors,
        seconds,
        latencies_ms,
    }
}

fn print_row(name: &str, l: &mut Load) {
    println!(
        "| {name} | {:.0} | {:.2} | {:.2} | {} of {} |",
        l.requests as f64 / l.seconds,
        percentile(&mut l.latencies_ms, 0.5),
        percentile(&mut l.latencies_ms, 0.99),
        l.errors,
        l.requests
    );
}

/// Prints the first few error responses, so a failure says what it was.
fn report_error(status: u16, body: &str) -> u16 {
    static SHOWN: AtomicUsize = AtomicUsize::new(0);
    if status != 200 && SHOWN.fetch_add(1, Ordering::Relaxed) < 5 {
        eprintln!("error response {status}: {body}");
    }
    status
}

fn multipart(png: &[u8]) -> (String, Vec<u8>) {
    let b = "benchboundary93f1";
    let mut body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\n10\r\n--{b}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"q.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(png);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(1_000_000), |s| s.parse())?;
    let seconds: f64 = args.get(2).map_or(Ok(5.0), |s| s.parse())?;
    let clients: usize = args.get(3).map_or(Ok(4), |s| s.parse())?;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!("# server under load: {n} documents, {clients} client threads, {seconds} s per scenario, {cores} cores (clients and server share them)");

    let tmp = std::env::temp_dir().join(format!("ash-bench-serve-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let mut config = IndexConfig::from_json(&std::fs::read_to_string(
        Path::new(ROOT).join("schemas/examples/index.json"),
    )?)?;
    config.hash.encoder = Some(EncoderRef::Dir(format!(
        "{ROOT}/plugin/models/ash-synfundus-48"
    )));
    let store = Store::init(&tmp.join("index"), config)?;
    let spread = Spread::Clustered {
        centres: 1000,
        flip: 0.06,
    };
    let codes = generate(n, 48, spread, 1, 2)?;
    let records = tmp.join("records.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&records)?);
        for (i, c) in codes.iter().enumerate() {
            writeln!(
                f,
                "{}",
                json!({"id": format!("r{i}"), "code": c.to_hex(), "grade": i % 5,
                       "eye": if i % 2 == 0 { "OD" } else { "OS" }, "report": REPORTS[i % 5]})
            )?;
        }
    }
    let t = Instant::now();
    let report = ingest::ingest(
        &store,
        Source::Jsonl(std::slice::from_ref(&records)),
        None,
        &IngestOptions::default(),
        &mut |e| panic!("{e:?}"),
    )?;
    println!(
        "indexed {} records in {:.1} s",
        report.indexed,
        t.elapsed().as_secs_f64()
    );
    let encoder = store.open_encoder(
        None,
        &EncoderOptions {
            sessions: 2,
            ..EncoderOptions::default()
        },
    )?;
    store.index.reload()?;
    let app = Arc::new(App::new(
        store,
        Some(encoder),
        ServeConfig {
            reload_ms: 200,
            // One image slot per client: uploads are refused at once
            // (503) when every slot is taken, which would measure the
            // refusals instead of the encoding.
            max_concurrent_images: clients.max(1),
            ..ServeConfig::default()
        },
    ));
    let bearer = format!("Bearer {}", app.token);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    listener.set_nonblocking(true)?;
    let server_app = app.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            server::serve_on(l, server_app).await.unwrap();
        });
    });
    std::thread::sleep(Duration::from_millis(200));

    let queries = generate(10_000, 48, spread, 1, 99)?;
    let code_query = |i: usize, agent: &ureq::Agent, base: &str| -> u16 {
        let body = json!({"code": queries[i % queries.len()].to_hex(), "k": 10});
        let mut r = agent
            .post(format!("{base}/search"))
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        report_error(r.status().as_u16(), &text)
    };
    let pngs: Vec<Vec<u8>> = (0..10)
        .map(|i| {
            std::fs::read(format!(
                "{ROOT}/tests/fixtures/ingest/images/case-{i:02}.png"
            ))
            .unwrap()
        })
        .collect();
    let bodies: Vec<(String, Vec<u8>)> = pngs.iter().map(|p| multipart(p)).collect();
    let image_query = |i: usize, agent: &ureq::Agent, base: &str| -> u16 {
        let (ct, body) = &bodies[i % bodies.len()];
        // A refused upload may be cut off before its body is sent.
        match agent
            .post(format!("{base}/search"))
            .header("content-type", ct)
            .send(&body[..])
        {
            Ok(mut r) => {
                let text = r.body_mut().read_to_string().unwrap_or_default();
                report_error(r.status().as_u16(), &text)
            }
            Err(e) => report_error(0, &e.to_string()),
        }
    };

    println!();
    println!("| scenario | requests/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|");
    let mut l = load(&base, clients, seconds, code_query);
    print_row("code query, k=10", &mut l);
    let mut l = load(&base, clients, seconds, |i, a, b| {
        let body = json!({"code": queries[i % queries.len()].to_hex(), "k": 10,
                          "filter": "grade:[2 TO 4] AND eye:OS", "text": "haemorrhages", "mode": "rrf"});
        let mut r = a
            .post(format!("{b}/search"))
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap();
        let _ = r.body_mut().read_to_vec();
        r.status().as_u16()
    });
    print_row("hybrid: code + text (rrf) + filter, k=10", &mut l);
    let mut l = load(&base, clients, seconds, image_query);
    print_row("image upload (160×160 PNG, encode included), k=10", &mut l);

    // The same while POST /ingest adds batches of 2,000 records.
    let ingesting = AtomicBool::new(true);
    let ingested = AtomicUsize::new(0);
    let ingest_errors = AtomicUsize::new(0);
    let extra = generate(1_000_000, 48, spread, 1, 7)?;
    let (mut l_code, mut l_image, ingest_s) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let agent = agent();
            let t = Instant::now();
            let mut batch = 0;
            while ingesting.load(Ordering::Relaxed) {
                let mut body = String::new();
                for j in 0..2000 {
                    let i = batch * 2000 + j;
                    body.push_str(&json!({"id": format!("new{i}"), "code": extra[i % extra.len()].to_hex(), "grade": i % 5, "report": "ingested under load"}).to_string());
                    body.push('\n');
                }
                let mut r = agent
                    .post(format!("{base}/ingest"))
                    .header("content-type", "application/x-ndjson")
                    .header("authorization", &bearer)
                    .send(body)
                    .unwrap();
                let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
                if r.status().as_u16() == 200 && v["failed"] == 0 {
                    ingested.fetch_add(v["indexed"].as_u64().unwrap() as usize, Ordering::Relaxed);
                } else {
                    ingest_errors.fetch_add(1, Ordering::Relaxed);
                }
                batch += 1;
            }
            t.elapsed().as_secs_f64()
        });
        let a = load(&base, clients, seconds, code_query);
        let b = load(&base, clients, seconds, image_query);
        ingesting.store(false, Ordering::Relaxed);
        (a, b, writer.join().unwrap())
    });
    print_row("code query while ingesting", &mut l_code);
    print_row("image upload while ingesting", &mut l_image);
    let added = ingested.load(Ordering::Relaxed);
    println!();
    println!(
        "ingest under load: {added} documents in {ingest_s:.1} s ({:.0}/s), {} failed batches",
        added as f64 / ingest_s,
        ingest_errors.load(Ordering::Relaxed)
    );
    app.store.index.reload()?;
    let docs = app.store.index.reader().searcher().num_docs() as usize;
    println!(
        "documents after: {docs} = {n} + {added}: {}",
        if docs == n + added {
            "nothing lost"
        } else {
            "MISMATCH"
        }
    );
    let _ = std::fs::remove_dir_all(&tmp);
    if docs != n + added {
        std::process::exit(1);
    }
    Ok(())
}
