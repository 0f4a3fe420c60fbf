//! Mutated DICOM objects through the decode path the server and the ingest
//! use ([`DicomHeader::read`], [`decoded_bytes`], [`decode_frame`]), in a
//! child process under a 2 GiB address-space limit, so an allocation that a
//! header talks it into fails the run (an abort) instead of passing
//! quietly on a large machine; and on a thread of 2 MiB of stack, as a
//! server's workers have, so unbounded recursion fails it too.
//!
//! Seeded and reproducible: `ASH_FUZZ_SEED` (default 1) and
//! `ASH_FUZZ_COUNT` (default 100,000) choose the run; a failure prints the
//! seed and the object's number, and `ASH_FUZZ_DUMP=file` writes each
//! object to `file` before it is tried, so the last one is the culprit.

#[path = "support/part10.rs"]
mod part10;

use std::process::Command;
use std::time::{Duration, Instant};

use ash_image::dicom::DicomHeader;
use ash_image::{decode_frame, decoded_bytes, ImageLimits};
use part10::*;

const CHILD: &str = "ASH_FUZZ_CHILD";
const ADDRESS_SPACE: u64 = 2 << 30;
/// One object taking longer than this is a hang.
const SLOW: Duration = Duration::from_secs(5);

#[test]
fn mutated_dicom_objects_never_abort_hang_or_overallocate() {
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "fuzz_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD, "1")
        .spawn()
        .expect("the test binary runs itself");
    let limit = Duration::from_secs(900);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            panic!("the fuzz run hung: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "the fuzz child failed ({status}): an abort (allocation over {ADDRESS_SPACE} bytes, \
         stack overflow) or a slow object; its output above names the seed and object"
    );
}

/// Runs only as the child of the test above.
#[test]
fn fuzz_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    limit_address_space(ADDRESS_SPACE);
    // Decoder panics are caught and become errors; their messages would
    // only flood the log. The run's own failures are still printed.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !QUIET.with(std::cell::Cell::get) {
            default(info)
        }
    }));
    let seed: u64 = env_number("ASH_FUZZ_SEED", 1);
    let count: u64 = env_number("ASH_FUZZ_COUNT", 100_000);
    let dump = std::env::var_os("ASH_FUZZ_DUMP");
    let seeds = corpus();
    let limits = ImageLimits {
        max_side: 4096,
        max_pixels: 4_000_000,
        max_file_bytes: 4 << 20,
    };
    let mut rng = Rng(seed);
    let (mut headers, mut decoded, mut slowest) = (0u64, 0u64, Duration::ZERO);
    for n in 0..count {
        let object = mutate(&mut rng, &seeds);
        if let Some(path) = &dump {
            std::fs::write(path, &object).unwrap();
        }
        let t = Instant::now();
        QUIET.with(|q| q.set(true));
        if let Ok(header) = DicomHeader::read(&object) {
            headers += 1;
            let _ = header.value("PatientID");
            let last = header.frames().saturating_sub(1);
            for frame in [0, last, last + 1] {
                if decode_frame(&object, &limits, frame).is_ok() {
                    decoded += 1;
                }
            }
        }
        let _ = decoded_bytes(&object, &limits);
        QUIET.with(|q| q.set(false));
        let took = t.elapsed();
        slowest = slowest.max(took);
        assert!(
            took < SLOW,
            "seed {seed}, object {n}: took {took:?} (a hang); rerun with ASH_FUZZ_DUMP"
        );
    }
    println!(
        "fuzz: {count} mutated DICOM objects (seed {seed}): {headers} headers read, \
         {decoded} frames decoded, slowest {:.1} ms, under a {} GiB address-space limit",
        slowest.as_secs_f64() * 1e3,
        ADDRESS_SPACE >> 30
    );
}

thread_local! {
    /// Set while a decoder runs: its panics are expected and caught.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn limit_address_space(bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: setrlimit reads the struct it is given and nothing else.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    assert_eq!(rc, 0, "setrlimit(RLIMIT_AS) failed");
}

/// Valid objects of every shape the decoder handles, to mutate.
fn corpus() -> Vec<Vec<u8>> {
    let mut jpeg = Vec::new();
    let picture =
        image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([x as u8 * 16, y as u8 * 16, 90]));
    image::DynamicImage::ImageRgb8(picture)
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let nested_image = {
        let mut data = identity("1.2.40");
        data.extend(nested(3, &el(0x0008, 0x0100, b"SH", b"CODE")));
        data.extend(pixel_module(8, 8, 1, 8, None));
        data.extend(el(0x7FE0, 0x0010, b"OB", &[9u8; 64]));
        object(EXPLICIT_LE, &data)
    };
    let implicit = {
        let mut data = Vec::new();
        data.extend(el_implicit(0x0008, 0x0018, b"1.2.41\0"));
        data.extend(el_implicit(0x0028, 0x0002, &1u16.to_le_bytes()));
        data.extend(el_implicit(0x0028, 0x0004, b"MONOCHROME2 "));
        data.extend(el_implicit(0x0028, 0x0010, &8u16.to_le_bytes()));
        data.extend(el_implicit(0x0028, 0x0011, &8u16.to_le_bytes()));
        data.extend(el_implicit(0x0028, 0x0100, &8u16.to_le_bytes()));
        data.extend(el_implicit(0x0028, 0x0101, &8u16.to_le_bytes()));
        data.extend(el_implicit(0x0028, 0x0102, &7u16.to_le_bytes()));
        data.extend(el_implicit(0x0028, 0x0103, &0u16.to_le_bytes()));
        data.extend(el_implicit(0x7FE0, 0x0010, &[3u8; 64]));
        object(IMPLICIT_LE, &data)
    };
    vec![
        native_image("1.2.30", 16, 16, 1, 8, 1),
        native_image("1.2.31", 8, 8, 3, 8, 1),
        native_image("1.2.32", 8, 8, 1, 16, 1),
        native_image("1.2.33", 4, 4, 1, 8, 4),
        jpeg_image("1.2.34", 16, 16, &jpeg),
        rle_image("1.2.35", 12, 10),
        nested_image,
        implicit,
    ]
}

/// splitmix64: small, seeded, the same everywhere.
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
}

const INTERESTING: [u32; 10] = [
    0,
    1,
    0x7F,
    0xFF,
    0xFFFF,
    0x7FFF_FFFF,
    0xFFFF_FFF0,
    0xFFFF_FFFE,
    0xFFFF_FFFF,
    0x0001_0000,
];

const VRS: [&[u8; 2]; 12] = [
    b"SQ", b"UN", b"OB", b"OW", b"US", b"UL", b"IS", b"CS", b"UT", b"XX", b"FD", b"AT",
];

const SYNTAXES: [&str; 6] = [
    EXPLICIT_LE,
    IMPLICIT_LE,
    EXPLICIT_BE,
    DEFLATED,
    JPEG_BASELINE,
    "1.2.840.10008.1.2.5",
];

/// One seed with one to four mutations, byte-level and structure-aware.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut b = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let len = b.len().max(1);
        match rng.below(12) {
            0 => {
                let i = 132 + rng.below(len.saturating_sub(132));
                if i < b.len() {
                    b[i] ^= 1 << rng.below(8);
                }
            }
            1 => {
                // A length (or any word) set to an interesting value.
                let i = 132 + rng.below(len.saturating_sub(136));
                if i + 4 <= b.len() {
                    let v = INTERESTING[rng.below(INTERESTING.len())];
                    b[i..i + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            2 => b.truncate(rng.below(len)),
            3 => {
                let i = rng.below(len);
                let j = (i + rng.below(64)).min(b.len());
                b.drain(i.min(b.len())..j);
            }
            4 => {
                let i = rng.below(len).min(b.len());
                let j = (i + rng.below(64)).min(b.len());
                let piece = b[i..j].to_vec();
                let at = rng.below(len).min(b.len());
                b.splice(at..at, piece);
            }
            5 => {
                // Deep nesting spliced in at an element boundary.
                let depth = [2, 33, 100, 3000, 50_000][rng.below(5)];
                let at = element_boundary(rng, &b);
                b.splice(at..at, nested(depth, &el(0x0008, 0x0100, b"SH", b"X")));
            }
            6 => {
                // A VR changed.
                if let Some(i) = find_vr(rng, &b) {
                    b[i..i + 2].copy_from_slice(VRS[rng.below(VRS.len())]);
                }
            }
            7 => {
                // A pixel-module number: rows, columns, samples, bits.
                let tags: [[u8; 4]; 4] = [
                    [0x28, 0, 0x10, 0],
                    [0x28, 0, 0x11, 0],
                    [0x28, 0, 0x02, 0],
                    [0x28, 0, 0x00, 1],
                ];
                if let Some(i) = find(&b, &tags[rng.below(4)]) {
                    let v = [0u16, 1, 3, 255, 4097, 65535][rng.below(6)];
                    if i + 10 <= b.len() {
                        b[i + 8..i + 10].copy_from_slice(&v.to_le_bytes());
                    }
                }
            }
            8 => {
                // NumberOfFrames replaced (or added before the pixel data).
                let frames = [
                    "0",
                    "1",
                    "2",
                    "5",
                    "16385",
                    "2000000000",
                    "-1",
                    "x",
                    "99999999999",
                ][rng.below(9)];
                let element = el(0x0028, 0x0008, b"IS", frames.as_bytes());
                match find(&b, &[0x28, 0, 0x08, 0]) {
                    Some(i) => {
                        let old = 8 + short_len(&b, i);
                        let end = (i + old).min(b.len());
                        b.splice(i..end, element);
                    }
                    None => {
                        if let Some(i) = find(&b, &[0x28, 0, 0x10, 0]) {
                            b.splice(i..i, element);
                        }
                    }
                }
            }
            9 => {
                // The transfer syntax swapped, the data set left as it is.
                if let Some(i) = find(&b, &[0x02, 0, 0x10, 0]) {
                    let old = 8 + short_len(&b, i);
                    let ts = SYNTAXES[rng.below(SYNTAXES.len())];
                    let end = (i + old).min(b.len());
                    b.splice(i..end, el(0x0002, 0x0010, b"UI", ts.as_bytes()));
                }
            }
            10 => {
                // A piece of another seed spliced in.
                let other = &seeds[rng.below(seeds.len())];
                let i = 132 + rng.below(other.len() - 132);
                let j = (i + rng.below(256)).min(other.len());
                let at = element_boundary(rng, &b);
                b.splice(at..at, other[i..j].iter().copied());
            }
            _ => {
                // An element claiming a huge length, at an element boundary.
                let at = element_boundary(rng, &b);
                let vr = VRS[rng.below(VRS.len())];
                let len = INTERESTING[rng.below(INTERESTING.len())];
                b.splice(at..at, el_claiming(0x0009, 0x0010, vr, len));
            }
        }
    }
    b
}

/// The 16-bit length of the explicit VR element at `i` (0 past the end).
fn short_len(b: &[u8], i: usize) -> usize {
    match b.get(i + 6..i + 8) {
        Some(l) => u16::from_le_bytes([l[0], l[1]]) as usize,
        None => 0,
    }
}

fn find(b: &[u8], needle: &[u8]) -> Option<usize> {
    b.windows(needle.len()).position(|w| w == needle)
}

/// A position just before some data-set element (or the end).
fn element_boundary(rng: &mut Rng, b: &[u8]) -> usize {
    let starts: Vec<usize> = [[0x08u8, 0], [0x10, 0], [0x28, 0], [0xE0, 0x7F]]
        .iter()
        .filter_map(|g| find(b, g))
        .collect();
    if starts.is_empty() {
        return b.len();
    }
    starts[rng.below(starts.len())]
}

/// The position of some explicit VR in the data set.
fn find_vr(rng: &mut Rng, b: &[u8]) -> Option<usize> {
    let at = 132 + rng.below(b.len().saturating_sub(140));
    (at..b.len().saturating_sub(2))
        .find(|&i| b[i].is_ascii_uppercase() && b[i + 1].is_ascii_uppercase() && i >= 136)
}
