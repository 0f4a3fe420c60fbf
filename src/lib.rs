//! ash-search: exact Hamming-space image retrieval for ophthalmology.
//!
//! The engine parts are crates of their own, re-exported here under the
//! names the application has always used:
//!
//! - [`mih`] (the `ash-mih` crate): multi-index hashing, exact range and
//!   k-NN search over bytes; with it [`code`] (binary codes and their
//!   Hamming distance), [`npy`] (packed codes in `.npy` files), [`synth`]
//!   (deterministic synthetic code sets) and [`fsio`] (atomic, durable
//!   writes of metadata files);
//! - [`encoder`] (the `ash-encoder` crate): encoder plugins (ONNX through
//!   ONNX Runtime): images → codes;
//! - [`index`] (the `ash-tantivy` crate): the `binary_hash` field for
//!   tantivy, its queries and hybrid search;
//!
//! and the application:
//!
//! - [`config`]: an index's configuration and the tantivy schema it makes;
//! - [`ingest`]: records and images → the index, as a pipeline;
//! - [`store`]: an index directory with its configuration and encoder;
//! - [`search`]: a search as users state it, hits as JSON;
//! - [`server`]: the HTTP API and the web page.

pub use ash_encoder as encoder;
pub use ash_mih as mih;
pub use ash_mih::{code, fsio, npy, synth};
pub use ash_tantivy as index;

pub mod config;
pub mod error;
pub mod ingest;
pub mod search;
pub mod server;
pub mod store;
