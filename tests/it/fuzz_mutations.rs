//! Mutation fuzzing on stable Rust, inside `make test`: valid inputs are
//! damaged at random (bytes flipped, set, cut, extended; header fields set
//! to edge values) and fed to the code that reads them. For `.mih` tables
//! the header checksum is recomputed after the damage (and sometimes the
//! body checksum too), so the damage gets past `open` and reaches the range
//! and k-NN searches. Every run is seeded: `ASH_FUZZ_SEED` and
//! `ASH_FUZZ_ITERS` reproduce or extend one. A panic fails the test with the
//! seed and iteration that caused it; an abort (stack overflow) fails the
//! whole test binary.

use std::panic::{catch_unwind, AssertUnwindSafe};

use ash_mih::code::BinaryCode;
use ash_mih::synth::{generate, Spread};
use ash_mih::{DocSet, MihBuilder, MihIndex, SearchOptions, Strategy};
use roaring::RoaringBitmap;

/// The file layout's fixed sizes, from docs/FORMAT.md (the spec, not the
/// code under test): the fixed header, the footer.
const FIXED_HEADER_LEN: usize = 64;
const FOOTER_LEN: usize = 8;

/// A little-endian u32 of the file at `at`.
fn get_u32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes"))
}

/// SplitMix64: small, seedable, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn seed() -> u64 {
    std::env::var("ASH_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00A5_45EA_2C11)
}

fn iterations(default: usize) -> usize {
    std::env::var("ASH_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs `f` for each iteration with its own generator; reports the first
/// panic with what reproduces it.
fn fuzz(name: &str, iters: usize, mut f: impl FnMut(&mut Rng)) {
    let seed = seed();
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failure = None;
    for i in 0..iters {
        let mut rng = Rng(seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(&mut rng))) {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            failure = Some(format!(
                "{name}: panic at iteration {i} (ASH_FUZZ_SEED={seed}): {msg}"
            ));
            break;
        }
    }
    std::panic::set_hook(quiet);
    if let Some(f) = failure {
        panic!("{f}");
    }
    eprintln!("{name}: {iters} inputs, seed {seed}, no panic");
}

/// Valid tables of several shapes: dense and sparse directories, 1 to 4
/// id bytes' worth of codes, 1 to 256 bits.
fn tables() -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    for (n, bits, m) in [
        (40, 12, None),
        (64, 48, None),
        (64, 48, Some(2)),
        (300, 32, Some(4)),
        (9, 256, None),
        (17, 1, None),
        (120, 64, Some(3)),
        (0, 24, None),
    ] {
        let codes = generate(
            n,
            bits,
            Spread::Clustered {
                centres: 4,
                flip: 0.1,
            },
            3,
            n as u64 + bits as u64,
        )
        .unwrap();
        let mut b = MihBuilder::new(bits).unwrap();
        if let Some(m) = m {
            b = b.substrings(m);
        }
        out.push((bits, b.build(&codes).unwrap()));
    }
    out
}

const EDGE_U32: [u32; 8] = [0, 1, 2, 31, 32, 0x7FFF_FFFF, 0xFFFF_FFFE, u32::MAX];

fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) {
    for _ in 0..1 + rng.below(6) {
        match rng.below(8) {
            0 | 1 => {
                let i = rng.below(bytes.len());
                if let Some(b) = bytes.get_mut(i) {
                    *b ^= 1 << rng.below(8);
                }
            }
            2 => {
                let i = rng.below(bytes.len());
                if let Some(b) = bytes.get_mut(i) {
                    *b = rng.next() as u8;
                }
            }
            3 => {
                // A header or descriptor field set to an edge value.
                let at = rng.below(FIXED_HEADER_LEN + 4 * 48) & !3;
                if at + 4 <= bytes.len() {
                    let v = EDGE_U32[rng.below(EDGE_U32.len())];
                    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            4 => {
                // A field anywhere set to a small number or the file length.
                let at = rng.below(bytes.len()) & !3;
                if at + 4 <= bytes.len() {
                    let v = [bytes.len() as u32, rng.below(64) as u32][rng.below(2)];
                    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            5 => {
                let cut = rng.below(bytes.len() + 1);
                bytes.truncate(cut);
            }
            6 => {
                for _ in 0..rng.below(64) {
                    bytes.push(rng.next() as u8);
                }
            }
            _ => {
                // A run of bytes copied from elsewhere in the file.
                if bytes.len() > 16 {
                    let from = rng.below(bytes.len() - 8);
                    let to = rng.below(bytes.len() - 8);
                    let run: Vec<u8> = bytes[from..from + 8].to_vec();
                    bytes[to..to + 8].copy_from_slice(&run);
                }
            }
        }
    }
}

/// Makes the damage pass `open`'s checksum checks where the length fields
/// still allow it: the recorded file length, the header CRC and, half the
/// time, the body CRC.
fn reseal(bytes: &mut [u8], rng: &mut Rng) {
    if bytes.len() < FIXED_HEADER_LEN + 4 + FOOTER_LEN {
        return;
    }
    if rng.chance(80) {
        let len = bytes.len() as u64;
        bytes[48..56].copy_from_slice(&len.to_le_bytes());
    }
    let header_len = get_u32(bytes, 12) as usize;
    if header_len >= FIXED_HEADER_LEN + 4 && header_len <= bytes.len() - FOOTER_LEN {
        let crc = crc32fast::hash(&bytes[..header_len - 4]);
        bytes[header_len - 4..header_len].copy_from_slice(&crc.to_le_bytes());
    }
    if rng.chance(50) {
        let body = bytes.len() - FOOTER_LEN;
        let crc = crc32fast::hash(&bytes[..body]);
        bytes[body..body + 4].copy_from_slice(&crc.to_le_bytes());
        bytes[body + 4..].copy_from_slice(b"HIM\n");
    }
}

struct EveryOther;

impl DocSet for EveryOther {
    fn contains(&self, doc: u32) -> bool {
        doc.is_multiple_of(2)
    }
}

#[test]
fn damaged_mih_tables_never_panic_in_open_verify_or_search() {
    let tables = tables();
    let mut opened = 0usize;
    fuzz("mih", iterations(100_000), |rng| {
        let (bits, base) = &tables[rng.below(tables.len())];
        let mut bytes = base.clone();
        mutate(&mut bytes, rng);
        reseal(&mut bytes, rng);
        let Ok(index) = MihIndex::open(&bytes[..]) else {
            return;
        };
        opened += 1;
        let _ = index.verify();
        let qbits = if rng.chance(90) { index.bits() } else { *bits };
        let Ok(mut q) = BinaryCode::zeros(qbits) else {
            return;
        };
        if let Some(c) = index.code(rng.below(index.len() + 2) as u32) {
            q = c;
        }
        let allow: RoaringBitmap = (0..index.len() as u32 + 3)
            .filter(|_| rng.chance(30))
            .collect();
        for strategy in [Strategy::Mih, Strategy::Scan, Strategy::Auto] {
            let opts = SearchOptions {
                strategy,
                allow: rng.chance(30).then_some(&allow),
                alive: if rng.chance(30) {
                    Some(&EveryOther)
                } else {
                    None
                },
                max_distance: rng.chance(20).then(|| rng.below(qbits + 2) as u32),
            };
            let k = [1, 10, index.len() + 1][rng.below(3)];
            let _ = index.knn(&q, k, &opts);
            let r = [0, 3, qbits as u32, u32::MAX][rng.below(4)];
            let _ = index.range(&q, r, &opts);
        }
    });
    // The fuzzer must reach the searches, not stop at open.
    assert!(
        opened > 10_000.min(iterations(100_000) / 10),
        "{opened} opened"
    );
}

/// Valid records for the example configuration, to damage.
const RECORDS: &[&str] = &[
    r#"{"id": "case-1", "code": "0123456789ab", "grade": 2, "eye": "OD", "report": "microaneurysms and hard exudates", "date": "2024-03-18"}"#,
    r#"{"id": "case-2", "image": "images/case-02.png", "grade": 0, "modality": "fundus", "date": "2024-03-18T09:30:00Z"}"#,
    r#"{"id": "x", "code": "ffffffffffff", "patient": "P-0001", "report": null}"#,
];

fn mutate_text(text: &str, rng: &mut Rng) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let i = rng.below(bytes.len() + 1);
        match rng.below(7) {
            0 if i < bytes.len() => {
                bytes.remove(i);
            }
            1 => {
                let alphabet = b"{}[]\",:\\0-9eE.ntfu ";
                bytes.insert(i.min(bytes.len()), alphabet[rng.below(alphabet.len())]);
            }
            2 if i < bytes.len() => bytes[i] = rng.next() as u8,
            3 => {
                let long =
                    ["a", "(", "9", "\\u0000", "é"][rng.below(5)].repeat(1 + rng.below(70_000));
                bytes.splice(i..i, long.bytes());
            }
            4 => bytes.truncate(i),
            5 => {
                let junk = [
                    "1e999",
                    "-0",
                    "NaN",
                    "null",
                    "[]",
                    "{}",
                    "\"\"",
                    "18446744073709551616",
                    "\"2024-13-45\"",
                    "\"\\ud800\"",
                    "true",
                ];
                let j = junk[rng.below(junk.len())];
                bytes.splice(i..i, j.bytes());
            }
            _ => {
                let dup = bytes.clone();
                bytes.extend_from_slice(&dup[..dup.len().min(200)]);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn damaged_jsonl_records_never_panic_the_parser() {
    use ash_search::config::IndexConfig;
    use ash_search::ingest::records::RecordParser;
    use ash_search::store::Store;
    let tmp = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/examples/index.json"),
    )
    .unwrap();
    let mut config = IndexConfig::from_json(&config).unwrap();
    config.hash.encoder = None;
    let store = Store::init(&tmp.path().join("index"), config).unwrap();
    let parser = RecordParser::new(&store);
    fuzz("jsonl", iterations(100_000) / 5, |rng| {
        let line = mutate_text(RECORDS[rng.below(RECORDS.len())], rng);
        let _ = parser.parse(&line, tmp.path());
    });
}

#[test]
fn damaged_manifests_never_panic_the_reader() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("plugin/models/ash-synfundus-12/manifest.json"))
            .unwrap(),
    )
    .unwrap();
    // Without the digest the model is not hashed: the fuzzer's time goes
    // to the manifest.
    manifest.as_object_mut().unwrap().remove("model_sha256");
    let text = manifest.to_string();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.onnx"), b"not a model").unwrap();
    fuzz("manifest", iterations(100_000) / 50, |rng| {
        let damaged = mutate_text(&text, rng);
        std::fs::write(dir.path().join("manifest.json"), damaged).unwrap();
        let _ = ash_encoder::manifest::read_plugin(dir.path());
    });
}

#[test]
fn random_query_strings_never_panic_or_overflow_the_parser() {
    use ash_tantivy::query_text::{parse_bounded, QueryLimits};
    use tantivy::schema::{Schema, FAST, INDEXED, STRING, TEXT};
    let mut schema = Schema::builder();
    let report = schema.add_text_field("report", TEXT);
    let eye = schema.add_text_field("eye", STRING);
    let grade = schema.add_i64_field("grade", INDEXED | FAST);
    let index = tantivy::Index::create_in_ram(schema.build());
    let parser = tantivy::query::QueryParser::for_index(&index, vec![report, eye, grade]);
    let pieces = [
        "(", ")", "NOT ", "AND ", "OR ", "+", "-", "\"", "\\", ":", "[", "]", "{", "}", " TO ",
        "*", "^2", "~3", "report:", "grade:", "eye:", "exudates", "OD", "2", "-1", "1e9", " ",
        "IN [", "/re.*/", "é", "\u{0}",
    ];
    fuzz("query", iterations(100_000) / 5, |rng| {
        let mut q = String::new();
        for _ in 0..rng.below(200) {
            let p = pieces[rng.below(pieces.len())];
            // Sometimes a long run of one piece: deep nesting, long words.
            let times = if rng.chance(5) {
                1 + rng.below(5_000)
            } else {
                1
            };
            for _ in 0..times {
                q.push_str(p);
            }
        }
        let _ = parse_bounded(&parser, &q, &QueryLimits::default());
    });
}
