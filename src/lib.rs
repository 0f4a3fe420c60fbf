//! ash-search: exact Hamming-space image retrieval for ophthalmology.
//!
//! - [`code`]: binary codes of 1..=256 bits and their Hamming distance;
//! - [`fsio`]: atomic, durable writes of metadata files;
//! - [`encoder`]: encoder plugins (ONNX through ONNX Runtime): images → codes;
//! - [`index`]: the `binary_hash` field for tantivy and hybrid search;
//! - [`ingest`]: records and images → the index, as a pipeline;
//! - [`store`]: an index directory with its configuration and encoder;
//! - [`search`]: a search as users state it, hits as JSON;
//! - [`server`]: the HTTP API and the web page;
//! - [`mih`]: multi-index hashing, exact range and k-NN search over bytes;
//! - [`npy`]: reading and writing packed codes as numpy `.npy` files;
//! - [`synth`]: deterministic synthetic code sets.

pub mod code;
pub mod encoder;
pub mod fsio;
pub mod index;
pub mod ingest;
pub mod mih;
pub mod npy;
pub mod search;
pub mod server;
pub mod store;
pub mod synth;
