//! `serve.json`: where the server listens and what it allows, described
//! setting by setting in `schemas/serve.schema.json` (description, default,
//! range). A configuration from a file or built in code is held to that
//! schema by [`ServeConfig::check`], so an unknown key or a value out of
//! range is refused when the server starts, never ignored or clamped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The environment variable that holds the bearer token (it wins over the
/// config file, so the secret need not be in a file).
pub const TOKEN_ENV: &str = "ASH_SERVE_TOKEN";

/// Which requests need the token. Writes always do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthScope {
    /// `POST /ingest` only.
    #[default]
    Writes,
    /// Every route but the page's static files and `/health` (patient
    /// images and reports are sensitive).
    All,
}

/// The server's settings; each is described in `schemas/serve.schema.json`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Bearer token. Without one, `serve` makes a random one at start and
    /// prints it: writes are never open.
    pub token: Option<String>,
    /// Which requests need the token.
    pub auth: AuthScope,
    /// Host names (besides IP addresses and `localhost`) the server answers
    /// to; a request for any other `Host` is refused (DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// Directories images may be served from (and ingested from over HTTP).
    pub image_roots: Vec<PathBuf>,
    /// Largest request body (an uploaded image or a JSONL batch).
    pub max_body_bytes: usize,
    /// Largest JSON search request body.
    pub max_json_bytes: usize,
    /// Largest uploaded image side, in pixels.
    pub max_image_side: u32,
    /// Largest uploaded image, in pixels (width × height).
    pub max_upload_pixels: u64,
    /// Largest image file served by `/documents/{id}/image`.
    pub max_image_bytes: u64,
    /// Images decoded or encoded at once (uploads, thumbnails, DICOM
    /// renderings). An upload beyond that is answered 503 with
    /// `Retry-After` at once, before its body is read.
    pub max_concurrent_images: usize,
    /// Memory that image work (uploads, thumbnails, DICOM renderings) may
    /// hold at once, reserved from each image's declared size before it is
    /// decoded (see `server::budget`): an image that needs more than all of
    /// it is refused (413), one that needs more than is free waits up to
    /// `image_queue_ms`, then 503.
    pub image_memory_bytes: u64,
    /// How long a thumbnail or a DICOM rendering waits for an image slot
    /// before 503: a results page asks for a dozen thumbnails at once, and
    /// a waiting request holds only its connection (bounded by
    /// `max_connections`), never an image in memory.
    pub image_queue_ms: u64,
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// A request is answered within this time, or with a 503.
    pub request_timeout_ms: u64,
    /// `POST /ingest` commits all of its records within this time, or none.
    pub ingest_timeout_ms: u64,
    /// A client must send a request's headers within this time, also on an
    /// idle kept-alive connection, or the connection is closed.
    pub header_timeout_ms: u64,
    /// Largest k of a search.
    pub max_k: usize,
    /// Origins allowed to call the API from a browser; none by default.
    pub cors_origins: Vec<String>,
    /// Encoder sessions: how many uploads encode at once.
    pub sessions: usize,
    /// How often the reader looks for commits made by other processes.
    pub reload_ms: u64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            auth: AuthScope::Writes,
            allowed_hosts: Vec::new(),
            image_roots: Vec::new(),
            max_body_bytes: 32 << 20,
            max_json_bytes: 1 << 20,
            max_image_side: 16_384,
            max_upload_pixels: 40_000_000,
            max_image_bytes: 256 << 20,
            max_concurrent_images: std::thread::available_parallelism().map_or(2, |n| n.get()),
            image_memory_bytes: 1 << 30,
            image_queue_ms: 5_000,
            max_connections: 256,
            request_timeout_ms: 30_000,
            ingest_timeout_ms: 300_000,
            header_timeout_ms: 10_000,
            max_k: 1_000,
            cors_origins: Vec::new(),
            sessions: 2,
            reload_ms: 1_000,
        }
    }
}

/// The largest `serve.json` read: far above any real one, so a path to a
/// device or a huge file is refused rather than read into memory.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The server configuration's JSON Schema.
pub const SERVE_SCHEMA: &str = include_str!("../../schemas/serve.schema.json");

/// Why a server configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeConfigError {
    /// The file could not be read: missing, not a regular file, or over
    /// [`MAX_CONFIG_BYTES`].
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: ash_image::untrusted::FileError,
    },
    /// The file is not JSON.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Where and why.
        source: serde_json::Error,
    },
    /// Settings outside `schemas/serve.schema.json`: every problem listed.
    #[error("{}does not fit schemas/serve.schema.json: {}",
        path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default(),
        problems.join("; "))]
    Schema {
        /// The file, when the settings came from one.
        path: Option<PathBuf>,
        /// Each problem, with the setting it is about.
        problems: Vec<String>,
    },
    /// Listening beyond loopback with a token nobody configured.
    #[error(
        "refusing to serve on {0} without a token: set \"token\" in the config or \
         {TOKEN_ENV} (a token made at start is only for loopback), or bind to 127.0.0.1"
    )]
    OpenWithoutToken(SocketAddr),
    /// An image root that does not exist.
    #[error("image root {}: {source}", path.display())]
    ImageRoot {
        /// The root.
        path: PathBuf,
        /// Why it cannot be used.
        source: std::io::Error,
    },
    /// A CORS origin that is not a header value.
    #[error("cors_origins: {0:?} is not an origin")]
    CorsOrigin(String),
}

impl ServeConfigError {
    /// The class of this error: the configuration is the caller's to fix.
    pub fn kind(&self) -> crate::error::ErrorKind {
        match self {
            ServeConfigError::Read { .. } | ServeConfigError::ImageRoot { .. } => {
                crate::error::ErrorKind::Io
            }
            _ => crate::error::ErrorKind::InvalidInput,
        }
    }
}

/// The schema's validator, compiled once per process.
fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(SERVE_SCHEMA).expect("the bundled schema is JSON");
        jsonschema::validator_for(&schema).expect("the bundled schema is valid")
    })
}

/// What `value` breaks of the schema, each with the setting it is about.
fn schema_problems(value: &serde_json::Value) -> Vec<String> {
    validator()
        .iter_errors(value)
        .map(|e| {
            let at = e.instance_path().to_string();
            let at = at.trim_start_matches('/');
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect()
}

impl ServeConfig {
    /// Reads a config file, held to the schema (relative image roots are
    /// taken from its folder).
    ///
    /// ```
    /// use ash_search::server::{ServeConfig, ServeConfigError};
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("serve.json");
    /// std::fs::write(&path, r#"{"max_k": 0, "max_body_byte": 10}"#).unwrap();
    /// match ServeConfig::load(&path) {
    ///     Err(ServeConfigError::Schema { problems, .. }) => assert_eq!(problems.len(), 2),
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn load(path: &Path) -> Result<Self, ServeConfigError> {
        let bytes =
            ash_image::untrusted::read_capped(path, MAX_CONFIG_BYTES).map_err(|source| {
                ServeConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| ServeConfigError::Json {
                path: path.to_path_buf(),
                source,
            })?;
        let problems = schema_problems(&value);
        if !problems.is_empty() {
            return Err(ServeConfigError::Schema {
                path: Some(path.to_path_buf()),
                problems,
            });
        }
        let mut config: ServeConfig =
            serde_json::from_value(value).map_err(|source| ServeConfigError::Json {
                path: path.to_path_buf(),
                source,
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for root in &mut config.image_roots {
            if root.is_relative() {
                *root = base.join(&*root);
            }
        }
        Ok(config)
    }

    /// The token from the environment wins; an empty one counts as none.
    pub fn with_env_token(mut self) -> Self {
        if let Ok(t) = std::env::var(TOKEN_ENV) {
            self.token = Some(t);
        }
        self.token = self.token.filter(|t| !t.is_empty());
        self
    }

    /// Refuses what would be unsafe or cannot work: any setting outside the
    /// schema (however the configuration was made), a server open to the
    /// network with a token nobody configured, image roots that do not
    /// exist (made canonical here), origins that are not header values.
    pub fn check(&mut self) -> Result<(), ServeConfigError> {
        let value = serde_json::to_value(&*self).expect("a configuration serialises");
        let problems = schema_problems(&value);
        if !problems.is_empty() {
            return Err(ServeConfigError::Schema {
                path: None,
                problems,
            });
        }
        if self.token.is_none() && !self.addr.ip().is_loopback() {
            return Err(ServeConfigError::OpenWithoutToken(self.addr));
        }
        for root in &mut self.image_roots {
            *root = root
                .canonicalize()
                .map_err(|source| ServeConfigError::ImageRoot {
                    path: root.clone(),
                    source,
                })?;
        }
        if let Some(origin) = self
            .cors_origins
            .iter()
            .find(|o| axum::http::HeaderValue::from_str(o).is_err())
        {
            return Err(ServeConfigError::CorsOrigin(origin.clone()));
        }
        Ok(())
    }

    /// A random token, for a server started without one (256 bits, hex).
    pub fn random_token() -> String {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        ash_mih::code::hex(&bytes)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn ingest_timeout(&self) -> Duration {
        Duration::from_millis(self.ingest_timeout_ms)
    }

    /// What an uploaded image is held to: its side and pixels as
    /// configured, its file no larger than a request body.
    pub fn upload_limits(&self) -> ash_image::ImageLimits {
        ash_image::ImageLimits {
            max_side: self.max_image_side,
            max_pixels: self.max_upload_pixels,
            max_file_bytes: self.max_body_bytes as u64,
        }
    }

    /// How long image work waits for a slot or for memory.
    pub fn image_queue(&self) -> Duration {
        Duration::from_millis(self.image_queue_ms)
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> serde_json::Value {
        serde_json::from_str(SERVE_SCHEMA).unwrap()
    }

    /// The schema documents every setting, with the default the code uses
    /// (all but `max_concurrent_images`, one per core), and nothing else.
    #[test]
    fn the_schema_describes_every_setting_with_its_default() {
        let schema = schema();
        let properties = schema["properties"].as_object().unwrap();
        let defaults = serde_json::to_value(ServeConfig::default()).unwrap();
        let defaults = defaults.as_object().unwrap();
        let mut documented: Vec<&String> = properties.keys().collect();
        let mut settings: Vec<&String> = defaults.keys().collect();
        documented.sort();
        settings.sort();
        assert_eq!(documented, settings);
        for (name, property) in properties {
            assert!(
                property["description"]
                    .as_str()
                    .is_some_and(|d| d.len() > 20),
                "{name} has no description"
            );
            if name == "max_concurrent_images" {
                assert!(property.get("default").is_none());
                continue;
            }
            assert_eq!(property["default"], defaults[name], "{name}'s default");
        }
    }

    /// An upload is never allowed more than an ingested image.
    #[test]
    fn upload_limits_are_within_the_ingest_limits() {
        let schema = schema();
        let max = |name: &str| schema["properties"][name]["maximum"].as_u64().unwrap();
        let ingest = ash_image::ImageLimits::default();
        assert_eq!(max("max_image_side"), u64::from(ingest.max_side));
        assert_eq!(max("max_upload_pixels"), ingest.max_pixels);
        assert_eq!(max("max_image_bytes"), ingest.max_file_bytes);
    }

    /// A config path that is a device, a folder or a huge file is refused
    /// at once, without reading it; deeply nested JSON is refused too.
    #[test]
    fn hostile_config_files_are_refused_without_reading_them() {
        use ash_image::untrusted::FileError;
        for path in ["/dev/zero", "/"] {
            assert!(
                matches!(
                    ServeConfig::load(Path::new(path)),
                    Err(ServeConfigError::Read {
                        source: FileError::NotRegular(_),
                        ..
                    })
                ),
                "{path}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let huge = dir.path().join("huge.json");
        std::fs::write(&huge, vec![b' '; MAX_CONFIG_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            ServeConfig::load(&huge),
            Err(ServeConfigError::Read {
                source: FileError::TooLarge { .. },
                ..
            })
        ));
        let nested = dir.path().join("nested.json");
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        std::fs::write(&nested, deep).unwrap();
        assert!(matches!(
            ServeConfig::load(&nested),
            Err(ServeConfigError::Json { .. })
        ));
        let cut = dir.path().join("cut.json");
        std::fs::write(&cut, br#"{"max_k": 5"#).unwrap();
        assert!(matches!(
            ServeConfig::load(&cut),
            Err(ServeConfigError::Json { .. })
        ));
    }

    #[test]
    fn settings_out_of_range_are_refused_never_clamped() {
        let mut ok = ServeConfig::default();
        ok.check().unwrap();
        for edit in [
            (|c: &mut ServeConfig| c.request_timeout_ms = 0) as fn(&mut ServeConfig),
            |c| c.reload_ms = 5,
            |c| c.max_k = 0,
            |c| c.max_image_side = 20_000,
            |c| c.sessions = 0,
            |c| c.token = Some("short".into()),
            |c| c.cors_origins = vec!["null".into()],
        ] {
            let mut config = ServeConfig::default();
            edit(&mut config);
            match config.check() {
                Err(ServeConfigError::Schema {
                    problems,
                    path: None,
                }) => {
                    assert_eq!(problems.len(), 1, "{problems:?}")
                }
                other => panic!("{config:?}: {other:?}"),
            }
        }
        let mut open = ServeConfig {
            addr: "0.0.0.0:8080".parse().unwrap(),
            ..ServeConfig::default()
        };
        assert!(matches!(
            open.check(),
            Err(ServeConfigError::OpenWithoutToken(_))
        ));
    }
}
