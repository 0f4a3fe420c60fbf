//! The app's integration tests, one binary so the app links once. Each
//! module is one area; `common` holds what they share (a server on
//! loopback, an Orthanc, brute-force answers), `part10` builds DICOM bytes
//! (shared with `ash-encoder`'s own tests).

mod common;
#[path = "../../crates/ash-image/tests/support/part10.rs"]
mod part10;

mod adversarial;
mod cli_codes;
mod cli_index;
mod cli_ingest;
mod dicom;
mod dicomweb;
mod embed;
mod fuzz_mutations;
mod hostile_files;
mod server_api;
