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

use crate::{EncoderError, RuntimeError};

/// The ONNX Runtime release ash-search is built and tested against.
pub const ORT_VERSION: &str = "1.31.1";

/// The oldest ONNX Runtime accepted: `ort` is built against C API 30.
pub const MIN_VERSION: (u32, u32) = (1, 30);

/// The first ONNX Runtime not accepted (a new major version may change
/// the C API).
pub const END_VERSION: (u32, u32) = (2, 0);

/// The library file name in the PyPI wheel and in `.cache/onnxruntime/`.
pub const ORT_LIB_NAME: &str = "libonnxruntime.so.1.31.1";

/// What a user runs when no library is found, or the one found will not do.
pub const INSTALL_HINT: &str = "install it with `make ort` in the ash-search checkout \
    (fetches onnxruntime==1.31.1 from PyPI into .cache/onnxruntime/), or \
    `pip install onnxruntime==1.31.1`, or point ORT_DYLIB_PATH at libonnxruntime.so";

/// Where a library was found, for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The library file.
    pub path: PathBuf,
    /// Which rule found it (`ORT_DYLIB_PATH`, `make ort`, `python onnxruntime`).
    pub source: &'static str,
}

/// Execution provider choice (`--device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// CUDA when this ONNX Runtime has it, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA or an error.
    Cuda,
}

/// The provider sessions actually run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// The CPU.
    Cpu,
    /// CUDA.
    Cuda,
}

impl Provider {
    /// ONNX Runtime's name of the provider.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "CPUExecutionProvider",
            Provider::Cuda => "CUDAExecutionProvider",
        }
    }
}

/// Finds the library from the process environment.
pub fn locate() -> Result<Located, RuntimeError> {
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
) -> Result<Located, RuntimeError> {
    if let Some(path) = env.filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(Located {
                path,
                source: "ORT_DYLIB_PATH",
            })
        } else {
            Err(RuntimeError::NotAFile(path))
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
    Err(RuntimeError::NotFound)
}

/// Where `make ort` puts the library: `.cache/onnxruntime/` in the
/// workspace this crate was built in (the crate's folder or one above it),
/// then beside the executable.
fn bootstrap_candidates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join(".cache/onnxruntime").join(ORT_LIB_NAME))
        .collect();
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
    /// Where the library was found.
    pub located: Located,
    /// The version the library reports.
    pub version: String,
    /// ONNX Runtime's environment, made once.
    pub environment: Environment,
    /// Whether the library has a CUDA provider that works here.
    pub cuda_available: bool,
}

static RUNTIME: OnceLock<Result<Runtime, RuntimeError>> = OnceLock::new();

/// Loads ONNX Runtime on first use; later calls return the same one.
pub fn runtime() -> Result<&'static Runtime, EncoderError> {
    RUNTIME
        .get_or_init(load_on_own_stack)
        .as_ref()
        .map_err(|e| EncoderError::Runtime(e.clone()))
}

/// Loads ONNX Runtime on a thread of its own, with a stack sized for the
/// process's command line.
///
/// ONNX Runtime 1.30 reads `/proc/self/cmdline` while it creates its
/// environment and walks it recursively, about 64 bytes of stack for each
/// byte of the command line: `ash-search encode` with a few thousand file
/// names (150 KB of arguments) overflowed the main thread's 8 MiB stack,
/// which aborts the process. The environment is made once per process, so
/// giving that one call a stack of its own (256 bytes per byte of command
/// line, plus 16 MiB; only what is touched is ever committed) removes the
/// cause for every caller, CLI or server thread alike.
fn load_on_own_stack() -> Result<Runtime, RuntimeError> {
    let cmdline = std::fs::read("/proc/self/cmdline").map_or(0, |c| c.len());
    let stack = (16 << 20) + cmdline.saturating_mul(256);
    std::thread::Builder::new()
        .name("ort-load".into())
        .stack_size(stack)
        .spawn(load)
        .map_err(|e| RuntimeError::LoaderThread(format!("cannot start it: {e}")))?
        .join()
        .map_err(|_| RuntimeError::LoaderThread("it panicked".into()))?
}

/// The version a library reports (`OrtGetApiBase()->GetVersionString()`),
/// read before `ort` takes the library, so that an unsupported one is
/// refused with a clear message rather than misbehaving later.
fn library_version(located: &Located) -> Result<String, RuntimeError> {
    let unusable = |reason: &dyn std::fmt::Display| RuntimeError::Unusable {
        path: located.path.clone(),
        found_through: located.source,
        reason: reason.to_string(),
    };
    // SAFETY: loading the library runs its initialisers, as `ort` loading it
    // next does anyway; `OrtGetApiBase` has this signature in every ONNX
    // Runtime release, returns a pointer to a static struct, and
    // `GetVersionString` returns a static NUL-terminated string. The
    // library stays loaded for the life of the process (`ort` keeps it too).
    unsafe {
        let lib = libloading::Library::new(&located.path).map_err(|e| unusable(&e))?;
        let get: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> =
            lib.get(b"OrtGetApiBase\0").map_err(|_| {
                unusable(&"the library does not export OrtGetApiBase: not ONNX Runtime")
            })?;
        let base = get();
        if base.is_null() {
            return Err(unusable(&"OrtGetApiBase returned nothing"));
        }
        let version = ((*base).GetVersionString)();
        if version.is_null() {
            return Err(unusable(&"GetVersionString returned nothing"));
        }
        let version = std::ffi::CStr::from_ptr(version)
            .to_str()
            .map_err(|_| unusable(&"the version string is not UTF-8"))?
            .to_string();
        std::mem::forget(lib);
        Ok(version)
    }
}

/// Whether ONNX Runtime `version` is within [`MIN_VERSION`, `END_VERSION`);
/// a version that cannot be read is not.
fn supported(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>());
    let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) else {
        return false;
    };
    (MIN_VERSION..END_VERSION).contains(&(major, minor))
}

fn load() -> Result<Runtime, RuntimeError> {
    let located = locate()?;
    let fail = |e: &dyn std::fmt::Display| RuntimeError::Unusable {
        path: located.path.clone(),
        found_through: located.source,
        reason: e.to_string(),
    };
    let version = library_version(&located)?;
    if !supported(&version) {
        return Err(RuntimeError::Unsupported {
            path: located.path.clone(),
            found_through: located.source,
            version,
        });
    }
    let builder = ort::init_from(&located.path).map_err(|e| fail(&e))?;
    let environment = builder
        .with_name("ash-search")
        .with_telemetry(false)
        .build()
        .map_err(|e| fail(&e))?;
    let cuda_available = ep::CUDA::is_available().map_err(|e| fail(&e))?;
    Ok(Runtime {
        located,
        version,
        environment,
        cuda_available,
    })
}

/// The provider a `device` choice runs on, or why it cannot.
pub fn choose_provider(device: Device, cuda_available: bool) -> Result<Provider, EncoderError> {
    match (device, cuda_available) {
        (Device::Cpu, _) | (Device::Auto, false) => Ok(Provider::Cpu),
        (Device::Auto | Device::Cuda, true) => Ok(Provider::Cuda),
        (Device::Cuda, false) => Err(RuntimeError::NoCuda.into()),
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
        .unwrap_err();
        assert!(matches!(&err, RuntimeError::NotAFile(_)));
        let err = err.to_string();
        assert!(err.contains("/nonexistent/libonnxruntime.so"), "{err}");
        assert!(err.contains("make ort"), "{err}");
    }

    #[test]
    fn nothing_found_names_the_fix() {
        let err = locate_from(None, &[PathBuf::from("/nonexistent/lib.so")], || None).unwrap_err();
        assert!(matches!(&err, RuntimeError::NotFound));
        let err = err.to_string();
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
    fn versions_outside_the_range_are_refused_with_it() {
        for good in ["1.30.0", "1.31.1", "1.42.0"] {
            assert!(supported(good), "{good}");
        }
        for bad in ["1.29.1", "1.16.0", "2.0.0", "garbage", ""] {
            assert!(!supported(bad), "{bad}");
        }
        let e = RuntimeError::Unsupported {
            path: "/lib/libonnxruntime.so".into(),
            found_through: "ORT_DYLIB_PATH",
            version: "1.29.1".into(),
        };
        assert!(e.to_string().contains("supported: 1.30"), "{e}");
    }

    #[test]
    fn cuda_is_never_a_silent_fallback() {
        assert_eq!(choose_provider(Device::Auto, false).unwrap(), Provider::Cpu);
        assert_eq!(choose_provider(Device::Auto, true).unwrap(), Provider::Cuda);
        assert_eq!(choose_provider(Device::Cpu, true).unwrap(), Provider::Cpu);
        assert!(matches!(
            choose_provider(Device::Cuda, false),
            Err(EncoderError::Runtime(RuntimeError::NoCuda))
        ));
    }
}
