//! ash-search: exact Hamming-space image retrieval for ophthalmology.
//!
//! The engine parts are crates of their own, imported by their names:
//!
//! - `ash_mih`: multi-index hashing, exact range and k-NN search over
//!   bytes; binary codes and their Hamming distance, packed codes in
//!   `.npy` files, synthetic code sets, atomic durable writes;
//! - `ash_encoder`: encoder plugins (ONNX through ONNX Runtime): images →
//!   codes, and the one safe way to read files from outside;
//! - `ash_tantivy`: the `binary_hash` field for tantivy, its queries and
//!   hybrid search;
//!
//! and the application:
//!
//! - [`config`]: an index's configuration and the tantivy schema it makes;
//! - [`ingest`]: records and images → the index, as a pipeline;
//! - [`embed`]: the same for another tantivy application's documents;
//! - [`store`]: an index directory with its configuration and encoder;
//! - [`search`]: a search as users state it, hits as JSON;
//! - [`server`]: the HTTP API and the web page.

#![forbid(unsafe_code)]

pub mod config;
pub mod embed;
pub mod error;
pub mod ingest;
pub mod search;
pub mod server;
pub mod store;
