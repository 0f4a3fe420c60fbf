//! The .mih file format: round trip, and every kind of damage detected
//! without a panic or an out-of-bounds read.

use ash_mih::code::BinaryCode;
use ash_mih::FormatError;

/// The fixed header's size, from docs/FORMAT.md.
const FIXED_HEADER_LEN: usize = 64;
use ash_mih::synth::{generate, Spread};
use ash_mih::{MihBuilder, MihError, MihIndex, SearchOptions, Strategy};

fn small_table(bits: usize, m: Option<usize>) -> (Vec<BinaryCode>, Vec<u8>) {
    let codes = generate(
        40,
        bits,
        Spread::Clustered {
            centres: 3,
            flip: 0.1,
        },
        5,
        6,
    )
    .unwrap();
    let mut b = MihBuilder::new(bits).unwrap();
    if let Some(m) = m {
        b = b.substrings(m);
    }
    let bytes = b.build(&codes).unwrap();
    (codes, bytes)
}

/// Opens, verifies and searches damaged bytes; none of it may panic.
/// Returns whether the damage was detected by open or verify.
fn detected(bytes: Vec<u8>, bits: usize) -> bool {
    let index = match MihIndex::open(bytes) {
        Err(_) => return true,
        Ok(index) => index,
    };
    let q = BinaryCode::zeros(bits).unwrap();
    for strategy in [Strategy::Mih, Strategy::Scan, Strategy::Auto] {
        let opts = SearchOptions {
            strategy,
            ..Default::default()
        };
        let _ = index.knn(&q, 50, &opts);
        let _ = index.range(&q, bits as u32, &opts);
    }
    let _ = index.code(3);
    index.verify().is_err()
}

#[test]
fn round_trip_keeps_every_code() {
    for bits in [1, 12, 48, 65, 256] {
        let (codes, bytes) = small_table(bits, None);
        let index = MihIndex::open(&bytes[..]).unwrap();
        index.verify().unwrap();
        assert_eq!(index.len(), codes.len());
        assert_eq!(index.bits(), bits);
        for (i, c) in codes.iter().enumerate() {
            assert_eq!(index.code(i as u32).as_ref(), Some(c));
        }
        assert_eq!(index.code(codes.len() as u32), None);
    }
}

#[test]
fn every_flipped_byte_is_detected_without_panic() {
    // A dense (m chosen) and a sparse (one 32-bit substring of 64) layout.
    for (bits, m) in [(24, None), (64, Some(2))] {
        let (_, bytes) = small_table(bits, m);
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x5a;
            assert!(
                detected(damaged, bits),
                "flip at byte {at} of {} went unnoticed",
                bytes.len()
            );
        }
    }
}

#[test]
fn every_truncation_is_detected_without_panic() {
    let (_, bytes) = small_table(48, None);
    for len in 0..bytes.len() {
        assert!(
            MihIndex::open(bytes[..len].to_vec()).is_err(),
            "truncated to {len}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        MihIndex::open(longer),
        Err(MihError::Format(FormatError::LengthMismatch { .. }))
    ));
}

#[test]
fn wrong_magic_and_version_are_named() {
    let (_, bytes) = small_table(12, None);
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert!(matches!(
        MihIndex::open(bad),
        Err(MihError::Format(FormatError::BadMagic))
    ));
    let mut newer = bytes.clone();
    newer[8] = 2;
    assert!(matches!(
        MihIndex::open(newer),
        Err(MihError::Format(FormatError::UnsupportedVersion(2)))
    ));
}

/// Rewrites a header field and its checksum, as a buggy or hostile writer
/// would, so that only the bounds checks stand between it and a bad read.
fn with_header_field(bytes: &[u8], at: usize, value: u64) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at..at + 8].copy_from_slice(&value.to_le_bytes());
    let header_len = u32::from_le_bytes(out[12..16].try_into().unwrap()) as usize;
    let crc = crc32fast::hash(&out[..header_len - 4]);
    out[header_len - 4..header_len].copy_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn out_of_range_offsets_with_a_valid_header_checksum_are_refused() {
    let (_, bytes) = small_table(48, None);
    let len = bytes.len() as u64;
    // codes offset, then table 0's offsets and ids offsets.
    for at in [40, FIXED_HEADER_LEN + 32, FIXED_HEADER_LEN + 40] {
        for value in [len, len - 8, u64::MAX - 3, 3] {
            let damaged = with_header_field(&bytes, at, value);
            assert!(
                matches!(
                    MihIndex::open(damaged),
                    Err(MihError::Format(FormatError::InvalidHeader(_)))
                ),
                "field at {at} = {value}"
            );
        }
    }
    // A code count larger than the sections hold.
    let damaged = with_header_field(&bytes, 24, 1 << 20);
    assert!(MihIndex::open(damaged).is_err());
}

#[test]
fn damaged_bucket_offsets_fail_the_search_not_the_process() {
    // 16 bits in one substring: a dense directory of 2^16 bucket starts.
    let (_, bytes) = small_table(16, Some(1));
    let index = MihIndex::open(&bytes[..]).unwrap();
    let offsets_at = u64::from_le_bytes(
        bytes[FIXED_HEADER_LEN + 32..FIXED_HEADER_LEN + 40]
            .try_into()
            .unwrap(),
    ) as usize;
    drop(index);
    let mut damaged = bytes.clone();
    // Every bucket start becomes huge: out-of-range spans everywhere.
    for slot in 0..1usize << 16 {
        let at = offsets_at + slot * 4;
        damaged[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    }
    let index = MihIndex::open(damaged).unwrap();
    assert!(index.verify().is_err());
    let q = BinaryCode::zeros(16).unwrap();
    let opts = SearchOptions {
        strategy: Strategy::Mih,
        ..Default::default()
    };
    assert!(matches!(
        index.knn(&q, 5, &opts),
        Err(MihError::Format(FormatError::CorruptTable { .. }))
    ));
}
