//! ash-search: exact Hamming-space image retrieval for ophthalmology.
//!
//! - [`code`]: binary codes of 1..=256 bits and their Hamming distance;
//! - [`mih`]: multi-index hashing, exact range and k-NN search over bytes;
//! - [`npy`]: reading and writing packed codes as numpy `.npy` files;
//! - [`synth`]: deterministic synthetic code sets.

pub mod code;
pub mod index;
pub mod ingest;
pub mod mih;
pub mod npy;
pub mod store;
pub mod synth;
