//! Any bytes given to the .mih reader: opening, verifying and searching
//! must return errors, never panic or read out of bounds. The header
//! checksum (and, when the input's first byte is odd, the body checksum)
//! is recomputed over the input first, so mutations reach the searches
//! instead of stopping at the checksum check.
#![no_main]

use ash_mih::code::BinaryCode;
use ash_mih::{MihIndex, SearchOptions, Strategy};
use libfuzzer_sys::fuzz_target;

/// The file layout's fixed sizes, from docs/FORMAT.md (the spec, not the
/// code under test): the fixed header, the footer.
const FIXED_HEADER_LEN: usize = 64;
const FOOTER_LEN: usize = 8;

/// A little-endian u32 of the file at `at`.
fn get_u32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes"))
}

fn reseal(bytes: &mut [u8]) {
    if bytes.len() < FIXED_HEADER_LEN + 4 + FOOTER_LEN {
        return;
    }
    let len = bytes.len() as u64;
    bytes[48..56].copy_from_slice(&len.to_le_bytes());
    let header_len = get_u32(bytes, 12) as usize;
    if header_len >= FIXED_HEADER_LEN + 4 && header_len <= bytes.len() - FOOTER_LEN {
        let crc = crc32fast::hash(&bytes[..header_len - 4]);
        bytes[header_len - 4..header_len].copy_from_slice(&crc.to_le_bytes());
    }
    if bytes[0] & 1 == 1 {
        let body = bytes.len() - FOOTER_LEN;
        let crc = crc32fast::hash(&bytes[..body]);
        bytes[body..body + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    reseal(&mut bytes);
    let Ok(index) = MihIndex::open(&bytes[..]) else { return };
    let _ = index.verify();
    let Ok(q) = BinaryCode::zeros(index.bits()) else { return };
    for strategy in [Strategy::Mih, Strategy::Scan, Strategy::Auto] {
        let opts = SearchOptions { strategy, ..Default::default() };
        let _ = index.knn(&q, 10, &opts);
        let _ = index.range(&q, 3, &opts);
    }
    let _ = index.code(0);
});
