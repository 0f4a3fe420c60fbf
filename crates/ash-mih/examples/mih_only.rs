//! Exact k-NN over codes that already exist, with `ash-mih` alone: packed
//! codes from a numpy `.npy` file (FAISS and PyTorch exports use the same
//! `packbits` layout), a `.mih` table built once, and the k nearest codes to
//! a few queries, checked against a brute-force scan.
//!
//! ```text
//! cargo run -p ash-mih --example mih_only [CODES.npy [K]]
//! ```
//!
//! Without a file it writes 100,000 clustered 64-bit codes to a temporary
//! `.npy` first, as `np.packbits(bits, axis=1)` would.

use std::path::PathBuf;

use ash_mih::code::BinaryCode;
use ash_mih::npy::{read_packed, write_packed};
use ash_mih::synth::{generate, Spread};
use ash_mih::{MihBuilder, MihIndex, SearchOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = tempfile::tempdir()?;
    let path = match args.next() {
        Some(p) => PathBuf::from(p),
        None => {
            let codes = generate(
                100_000,
                64,
                Spread::Clustered {
                    centres: 500,
                    flip: 0.05,
                },
                1,
                2,
            )?;
            let packed: Vec<u8> = codes.iter().flat_map(|c| c.to_packed()).collect();
            let path = dir.path().join("codes.npy");
            write_packed(&path, &packed, 8)?;
            path
        }
    };
    let k: usize = args.next().map_or(Ok(10), |k| k.parse())?;

    let packed = read_packed(&path)?;
    let bits = packed.row_bytes * 8;
    let codes: Vec<BinaryCode> = (0..packed.rows)
        .map(|i| BinaryCode::from_packed(packed.row(i), bits))
        .collect::<Result<_, _>>()?;
    let table = MihBuilder::new(bits)?.build(&codes)?;
    let index = MihIndex::open(table)?;
    println!(
        "{}: {} codes of {bits} bits, table of {} bytes",
        path.display(),
        index.len(),
        index.size_bytes()
    );

    for q in [0, codes.len() / 2, codes.len() - 1] {
        let query = codes[q];
        let hits = index.knn(&query, k, &SearchOptions::default())?;
        // The same answer by brute force: exact means equal, ties included.
        let mut all: Vec<(u32, u32)> = codes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.distance(&query).expect("same length"), i as u32))
            .collect();
        all.sort_unstable();
        let brute: Vec<(u32, u32)> = all.into_iter().take(k).collect();
        let got: Vec<(u32, u32)> = hits.iter().map(|h| (h.distance, h.doc)).collect();
        assert_eq!(got, brute, "query {q}: MIH and brute force disagree");
        println!(
            "query {q}: {k} nearest at distances {:?} (= brute force)",
            hits.iter().map(|h| h.distance).collect::<Vec<_>>()
        );
    }
    Ok(())
}
