//! `ash_search._native`: the Rust side of the `ash_search` Python package
//! (the index, the encoder, batched search). The package's Python modules
//! wrap it: they accept numpy arrays, bytes and hex, turn records into
//! JSONL, and give the results typed shapes; exceptions are the classes of
//! `ash_search.errors`, chosen by the library's error kinds.

#![forbid(unsafe_code)]

mod encoder;
mod errors;
mod index;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<index::PyIndex>()?;
    m.add_class::<encoder::PyEncoder>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
