//! A real Orthanc (Debian's `orthanc` and `orthanc-dicomweb`) as the PACS:
//! started on a free loopback port with its own configuration and storage,
//! loaded over its REST API, stopped (killed) when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

const ORTHANC: &str = "/usr/sbin/Orthanc";
const DICOMWEB_PLUGIN: &str = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";

/// The user and password Orthanc is configured with when it asks for them.
pub const USER: &str = "ash";
pub const PASSWORD: &str = "pacs-secret";

pub struct Orthanc {
    child: Child,
    port: u16,
    auth: bool,
    log: PathBuf,
}

impl Orthanc {
    /// Starts Orthanc over `storage` (kept between starts); with `auth` it
    /// asks for [`USER`] and [`PASSWORD`].
    pub fn start(storage: &Path, auth: bool) -> Orthanc {
        for (path, package) in [(ORTHANC, "orthanc"), (DICOMWEB_PLUGIN, "orthanc-dicomweb")] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: run scripts/ensure_dicom_tools.sh (apt-get install {package})"
            );
        }
        std::fs::create_dir_all(storage).unwrap();
        let port = free_port();
        let config = storage.with_extension(format!("orthanc-{port}.json"));
        std::fs::write(
            &config,
            json!({
                "Name": "ash-test",
                "StorageDirectory": storage,
                "IndexDirectory": storage,
                "HttpPort": port,
                "RemoteAccessAllowed": false,
                "DicomServerEnabled": false,
                "AuthenticationEnabled": auth,
                "RegisteredUsers": {USER: PASSWORD},
                "Plugins": [DICOMWEB_PLUGIN],
                "DicomWeb": {"Enable": true, "Root": "/dicom-web/"},
            })
            .to_string(),
        )
        .unwrap();
        let log = storage.with_extension(format!("orthanc-{port}.log"));
        let child = Command::new(ORTHANC)
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut orthanc = Orthanc {
            child,
            port,
            auth,
            log,
        };
        orthanc.wait_ready();
        orthanc
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "Orthanc exited with {status}: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if self.get("/system").is_some_and(|s| s == 200) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "Orthanc did not answer within 60 s: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its DICOMweb root.
    pub fn dicomweb(&self) -> String {
        format!("http://127.0.0.1:{}/dicom-web", self.port)
    }

    fn request(&self, method: &str, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut r = match method {
            "POST" => agent.post(url),
            _ => unreachable!(),
        };
        if self.auth {
            r = r.header("Authorization", basic());
        }
        r
    }

    fn get(&self, path: &str) -> Option<u16> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let mut r = agent.get(format!("http://127.0.0.1:{}{path}", self.port));
        if self.auth {
            r = r.header("Authorization", basic());
        }
        r.call().ok().map(|r| r.status().as_u16())
    }

    /// Stores DICOM files through the REST API (`POST /instances`).
    pub fn upload(&self, files: &[PathBuf]) {
        for file in files {
            let bytes = std::fs::read(file).unwrap();
            let response = self.request("POST", "/instances").send(&bytes[..]).unwrap();
            assert_eq!(response.status(), 200, "upload of {}", file.display());
        }
    }

    /// Kills it at once, as a crash or a pulled cable would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn basic() -> String {
    use base64::Engine;
    let pair = format!("{USER}:{PASSWORD}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
