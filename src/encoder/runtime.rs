//! ONNX Runtime, loaded at run time (`ort`'s `load-dynamic`): where the
//! shared library is found, the one process-wide environment, and which
//! execution provider a session runs on.
//!
//! The library is looked for, in order: `ORT_DYLIB_PATH`; the copy `make ort`
//! bootstraps under `.cache/onnxruntime/` of the checkout this binary was
//! built from, or beside the binary; the `onnxruntime` package of the
//! `python3` on `PATH`. An explicit `ORT_DYLIB_PATH` that does not load is an
//! error, not a reason to look elsewhere.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::ep::{self, ExecutionProvider};

use super::EncoderError;

/// The ONNX Runtime release ash-search is built and tested against.
pub const ORT_VERSION: &str = "1.31.1";

/// The library file name in the PyPI wheel and in `.cache/onnxruntime/`.
pub const ORT_LIB_NAME: &str = "libonnxruntime.so.1.31.1";

/// What a user runs when no library is found.
pub const INSTALL_HINT: &str = "install it with `make ort` in the ash-search checkout \
    (fetches onnxruntime==1.31.1 from PyPI into .cache/onnxruntime/), or \
    `pip install onnxruntime==1.31.1`, or point ORT_DYLIB_PATH at libonnxruntime.so";

/// Where a library was found, for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub path: PathBuf,
    pub source: &'static str,
}

/// Execution provider choice (`--device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// CUDA when this ONNX Runtime has it, else the CPU.
    #[default]
    Auto,
    Cpu,
    /// CUDA or an error.
    Cuda,
}

/// The provider sessions actually run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Cpu,
    Cuda,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "CPUExecutionProvider",
            Provider::Cuda => "CUDAExecutionProvider",
        }
    }
}

/// Finds the library from the process environment.
pub fn locate() -> Result<Located, EncoderError> {
    locate_from(
        std::env::var_os("ORT_DYLIB_PATH"),
        &bootstrap_candidates(),
        python_onnxruntime,
    )
}

/// [`locate`] with its inputs given, so that every branch can be tested.
pub fn locate_from(
    env: Option<OsString>,
    bootstrap: &[PathBuf],
    python: impl FnOnce() -> Option<PathBuf>,
) -> Result<Located, EncoderError> {
    if let Some(path) = env.filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(Located {
                path,
                source: "ORT_DYLIB_PATH",
            })
        } else {
            Err(EncoderError::Runtime(format!(
                "ORT_DYLIB_PATH={} is not a file; {INSTALL_HINT}",
                path.display()
            )))
        };
    }
    if let Some(path) = bootstrap.iter().find(|p| p.is_file()) {
        return Ok(Located {
            path: path.clone(),
            source: "make ort",
        });
    }
    if let Some(path) = python() {
        return Ok(Located {
            path,
            source: "python onnxruntime",
        });
    }
    Err(EncoderError::Runtime(format!(
        "ONNX Runtime {ORT_VERSION} was not found (ORT_DYLIB_PATH unset, no \
         .cache/onnxruntime/{ORT_LIB_NAME}, no python3 onnxruntime); {INSTALL_HINT}"
    )))
}

fn bootstrap_candidates() -> Vec<PathBuf> {
    let mut out = vec![Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".cache/onnxruntime")
        .join(ORT_LIB_NAME)];
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_owned))
    {
        out.push(dir.join(ORT_LIB_NAME));
        out.push(dir.join("../lib").join(ORT_LIB_NAME));
    }
    out
}

/// The library inside `python3`'s `onnxruntime` package, if it has one.
fn python_onnxruntime() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, onnxruntime; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let capi = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("capi");
    let mut libs: Vec<PathBuf> = std::fs::read_dir(&capi)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    libs.sort();
    libs.pop()
}

/// The library's location and the environment made from it: once per
/// process, as ONNX Runtime requires.
pub struct Runtime {
    pub located: Located,
    pub environment: Environment,
    pub cuda_available: bool,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// Loads ONNX Runtime on first use; later calls return the same one.
pub fn runtime() -> Result<&'static Runtime, EncoderError> {
    RUNTIME
        .get_or_init(|| load().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| EncoderError::Runtime(e.clone()))
}

fn load() -> Result<Runtime, EncoderError> {
    let located = locate()?;
    let fail = |e: &dyn std::fmt::Display| {
        EncoderError::Runtime(format!(
            "{} (found through {}): {e}; {INSTALL_HINT}",
            located.path.display(),
            located.source
        ))
    };
    let builder = ort::init_from(&located.path).map_err(|e| fail(&e))?;
    let environment = builder
        .with_name("ash-search")
        .with_telemetry(false)
        .build()
        .map_err(|e| fail(&e))?;
    let cuda_available = ep::CUDA::is_available().map_err(|e| fail(&e))?;
    Ok(Runtime {
        located,
        environment,
        cuda_available,
    })
}

/// The provider a `device` choice runs on, or why it cannot.
pub fn choose_provider(device: Device, cuda_available: bool) -> Result<Provider, EncoderError> {
    match (device, cuda_available) {
        (Device::Cpu, _) | (Device::Auto, false) => Ok(Provider::Cpu),
        (Device::Auto | Device::Cuda, true) => Ok(Provider::Cuda),
        (Device::Cuda, false) => Err(EncoderError::Runtime(
            "--device cuda: this ONNX Runtime has no CUDA execution provider (the PyPI \
             `onnxruntime` wheel is CPU-only; use `onnxruntime-gpu` through ORT_DYLIB_PATH \
             on a machine with CUDA, or --device auto|cpu)"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_path_that_is_missing_names_the_fix() {
        let err = locate_from(Some("/nonexistent/libonnxruntime.so".into()), &[], || {
            panic!("an explicit path must not fall back to python")
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("/nonexistent/libonnxruntime.so"), "{err}");
        assert!(err.contains("make ort"), "{err}");
    }

    #[test]
    fn nothing_found_names_the_fix() {
        let err = locate_from(None, &[PathBuf::from("/nonexistent/lib.so")], || None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("make ort") && err.contains("pip install onnxruntime"));
    }

    #[test]
    fn order_is_env_then_bootstrap_then_python() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.so");
        let b = dir.path().join("b.so");
        std::fs::write(&a, b"").unwrap();
        std::fs::write(&b, b"").unwrap();
        let got = locate_from(Some(a.clone().into()), std::slice::from_ref(&b), || None).unwrap();
        assert_eq!((got.path, got.source), (a.clone(), "ORT_DYLIB_PATH"));
        let got = locate_from(None, std::slice::from_ref(&b), || Some(a.clone())).unwrap();
        assert_eq!((got.path, got.source), (b, "make ort"));
        let got = locate_from(None, &[], || Some(a.clone())).unwrap();
        assert_eq!(got.source, "python onnxruntime");
    }

    #[test]
    fn cuda_is_never_a_silent_fallback() {
        assert_eq!(choose_provider(Device::Auto, false).unwrap(), Provider::Cpu);
        assert_eq!(choose_provider(Device::Auto, true).unwrap(), Provider::Cuda);
        assert_eq!(choose_provider(Device::Cpu, true).unwrap(), Provider::Cpu);
        assert!(choose_provider(Device::Cuda, false).is_err());
    }
}
