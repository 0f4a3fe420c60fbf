//! `serve.json`: where the server listens and what it allows. Unknown keys
//! are errors, so a misspelt limit is not silently ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The environment variable that holds the bearer token (it wins over the
/// config file, so the secret need not be in a file).
pub const TOKEN_ENV: &str = "ASH_SERVE_TOKEN";

/// Which requests need the token. Writes always do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthScope {
    /// `POST /ingest` only.
    #[default]
    Writes,
    /// Every route but the page's static files and `/health` (patient
    /// images and reports are sensitive).
    All,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
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
    pub request_timeout_ms: u64,
    /// `POST /ingest` commits all of its records within this time, or none.
    pub ingest_timeout_ms: u64,
    /// A client must send a request's headers within this time, also on an
    /// idle kept-alive connection, or the connection is closed.
    pub header_timeout_ms: u64,
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

impl ServeConfig {
    /// Reads a config file (relative image roots are taken from its folder).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut config: ServeConfig =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
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

    /// Refuses what would be unsafe or cannot work: a server open to the
    /// network with a token nobody configured, image roots that do not
    /// exist, limits of zero.
    pub fn check(&mut self) -> Result<(), String> {
        if self.token.is_none() && !self.addr.ip().is_loopback() {
            return Err(format!(
                "refusing to serve on {} without a token: set \"token\" in the config or \
                 {TOKEN_ENV} (a token made at start is only for loopback), or bind to 127.0.0.1",
                self.addr
            ));
        }
        if let Some(t) = &self.token {
            if t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err("the token must be at least 16 printable ASCII characters".into());
            }
        }
        for root in &mut self.image_roots {
            *root = root
                .canonicalize()
                .map_err(|e| format!("image root {}: {e}", root.display()))?;
        }
        let zero = [
            ("max_k", self.max_k == 0),
            ("sessions", self.sessions == 0),
            ("max_body_bytes", self.max_body_bytes == 0),
            ("max_json_bytes", self.max_json_bytes == 0),
            ("max_upload_pixels", self.max_upload_pixels == 0),
            ("max_image_bytes", self.max_image_bytes == 0),
            ("max_concurrent_images", self.max_concurrent_images == 0),
            ("max_connections", self.max_connections == 0),
            ("image_memory_bytes", self.image_memory_bytes == 0),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, z)| *z) {
            return Err(format!("{name} must be at least 1"));
        }
        for origin in &self.cors_origins {
            if axum::http::HeaderValue::from_str(origin).is_err() || origin == "null" {
                return Err(format!("cors_origins: {origin:?} is not an origin"));
            }
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
        Duration::from_millis(self.request_timeout_ms.max(1))
    }

    pub fn ingest_timeout(&self) -> Duration {
        Duration::from_millis(self.ingest_timeout_ms.max(1))
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
        Duration::from_millis(self.header_timeout_ms.max(1))
    }
}
