//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod orthanc;
pub mod server;

/// Brute-force answers, the same ones ash-mih's own tests use.
#[path = "../../../crates/ash-mih/tests/support/mod.rs"]
mod brute;
#[allow(unused_imports)]
pub use brute::{brute_force, brute_knn, brute_range};
