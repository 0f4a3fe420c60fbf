//! Any bytes given to the .mih reader: opening, verifying and searching
//! must return errors, never panic or read out of bounds.
#![no_main]

use ash_search::code::BinaryCode;
use ash_search::mih::{MihIndex, SearchOptions, Strategy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(index) = MihIndex::open(data) else { return };
    let _ = index.verify();
    let Ok(q) = BinaryCode::zeros(index.bits()) else { return };
    for strategy in [Strategy::Mih, Strategy::Scan, Strategy::Auto] {
        let opts = SearchOptions { strategy, ..Default::default() };
        let _ = index.knn(&q, 10, &opts);
        let _ = index.range(&q, 3, &opts);
    }
    let _ = index.code(0);
});
