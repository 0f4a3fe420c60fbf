//! The two DICOMweb requests an ingest makes: QIDO-RS to list instances
//! (paged with `limit`/`offset`) and WADO-RS to retrieve one instance
//! (`multipart/related; type="application/dicom"`, parsed by `multer`).
//!
//! Instance URLs are built from the configured base URL and the UIDs, never
//! taken from the server's `RetrieveURL`: a server cannot send the ingest
//! (and its credentials) elsewhere.

use std::time::Duration;

use futures_util::FutureExt;
use serde_json::Value;

use super::{Auth, DicomWebError};

/// DICOM JSON tags the listing reads.
const STUDY_UID: &str = "0020000D";
const SERIES_UID: &str = "0020000E";
const SOP_INSTANCE_UID: &str = "00080018";

/// Largest QIDO-RS page body read.
const MAX_PAGE_BYTES: u64 = 64 << 20;
/// Multipart framing allowed around a retrieved object.
const MULTIPART_SLACK: u64 = 64 << 10;

/// One instance as a QIDO-RS listing names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRef {
    pub study: String,
    pub series: String,
    pub sop: String,
    /// The value of the attribute documents take their id from, when the
    /// server returned it.
    pub id: Option<String>,
}

/// A listed instance that cannot be retrieved, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusableEntry {
    pub position: usize,
    pub reason: String,
}

/// Why an instance was not retrieved.
#[derive(Debug)]
pub enum RetrieveError {
    /// This instance's failure (gone, too large, a malformed answer): an
    /// error record, and the ingest goes on.
    Instance(String),
    /// The server's failure (unreachable, refusing the credentials): the
    /// ingest stops.
    Server(DicomWebError),
}

/// A DICOMweb server.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    auth: Option<String>,
    max_object_bytes: u64,
}

impl Client {
    /// A client of the server at `base` (its DICOMweb root, e.g.
    /// `http://pacs:8042/dicom-web`).
    pub fn new(
        base: &str,
        auth: Option<&Auth>,
        max_object_bytes: u64,
    ) -> Result<Self, DicomWebError> {
        let base = base.trim_end_matches('/').to_string();
        let parsed: ureq::http::Uri = base.parse().map_err(|_| DicomWebError::BadUrl {
            url: base.clone(),
            reason: "not a URL".into(),
        })?;
        if !matches!(parsed.scheme_str(), Some("http" | "https")) || parsed.host().is_none() {
            return Err(DicomWebError::BadUrl {
                url: base,
                reason: "a DICOMweb root is an http:// or https:// URL with a host".into(),
            });
        }
        if parsed.query().is_some() {
            return Err(DicomWebError::BadUrl {
                url: base,
                reason: "the DICOMweb root takes no query string".into(),
            });
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_recv_body(Some(Duration::from_secs(600)))
            .max_redirects(0)
            .build()
            .into();
        Ok(Self {
            agent,
            base,
            auth: auth.map(Auth::header),
            max_object_bytes,
        })
    }

    /// The listing's URL for `study` (all studies when `None`).
    pub fn listing_url(&self, study: Option<&str>) -> String {
        match study {
            Some(uid) => format!("{}/studies/{uid}/instances", self.base),
            None => format!("{}/instances", self.base),
        }
    }

    /// The WADO-RS URL of one instance.
    pub fn instance_url(&self, i: &InstanceRef) -> String {
        format!(
            "{}/studies/{}/series/{}/instances/{}",
            self.base, i.study, i.series, i.sop
        )
    }

    /// One page of the instance listing: the instances and the entries that
    /// cannot be used (a missing or malformed UID), by position in the page.
    pub fn list(
        &self,
        study: Option<&str>,
        query: &[(&str, String)],
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<InstanceRef>, Vec<UnusableEntry>), DicomWebError> {
        let url = self.listing_url(study);
        let mut request = self
            .agent
            .get(&url)
            .header("Accept", "application/dicom+json, application/json")
            .query("offset", offset.to_string())
            .query("limit", limit.to_string());
        for (key, value) in query {
            request = request.query(*key, value);
        }
        if let Some(auth) = &self.auth {
            request = request.header("Authorization", auth);
        }
        let mut response = request.call().map_err(|e| transport(&url, e))?;
        let status = response.status().as_u16();
        if status == 204 {
            return Ok((Vec::new(), Vec::new()));
        }
        check_status(&url, status)?;
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_PAGE_BYTES)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => DicomWebError::BadResponse {
                    url: url.clone(),
                    reason: format!("a listing page over {MAX_PAGE_BYTES} bytes"),
                },
                e => transport(&url, e),
            })?;
        let bad = |reason: String| DicomWebError::BadResponse {
            url: url.clone(),
            reason,
        };
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| bad(format!("the listing is not DICOM JSON: {e}")))?;
        let Value::Array(entries) = value else {
            return Err(bad("the listing is not a JSON array".into()));
        };
        let id_tag = query
            .iter()
            .find(|(k, _)| *k == "includefield")
            .map(|(_, tag)| tag.as_str());
        let mut found = Vec::with_capacity(entries.len());
        let mut unusable = Vec::new();
        for (position, entry) in entries.iter().enumerate() {
            let uid = |tag: &str| -> Result<String, String> {
                let value = first_string(entry, tag)
                    .ok_or_else(|| format!("the listing entry has no {tag} value"))?;
                check_uid(&value)?;
                Ok(value)
            };
            match (uid(STUDY_UID), uid(SERIES_UID), uid(SOP_INSTANCE_UID)) {
                (Ok(study), Ok(series), Ok(sop)) => found.push(InstanceRef {
                    study,
                    series,
                    id: id_tag.and_then(|t| first_string(entry, t)),
                    sop,
                }),
                (Err(reason), _, _) | (_, Err(reason), _) | (_, _, Err(reason)) => {
                    unusable.push(UnusableEntry { position, reason })
                }
            }
        }
        Ok((found, unusable))
    }

    /// The Part 10 bytes of one instance.
    pub fn retrieve(&self, instance: &InstanceRef) -> Result<Vec<u8>, RetrieveError> {
        let url = self.instance_url(instance);
        let mut request = self
            .agent
            .get(&url)
            // `transfer-syntax=*`: as stored. Without it a server must
            // transcode to explicit VR little endian, which some cannot do
            // for JPEG 2000 (and which would change lossy pixels).
            .header(
                "Accept",
                "multipart/related; type=\"application/dicom\"; transfer-syntax=*",
            );
        if let Some(auth) = &self.auth {
            request = request.header("Authorization", auth);
        }
        let mut response = request
            .call()
            .map_err(|e| RetrieveError::Server(transport(&url, e)))?;
        let status = response.status().as_u16();
        match status {
            200 => {}
            401 | 403 => {
                return Err(RetrieveError::Server(DicomWebError::Unauthorized {
                    url,
                    status,
                }))
            }
            _ => {
                return Err(RetrieveError::Instance(format!(
                    "the server answered {status} to the retrieval"
                )))
            }
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let limit = self.max_object_bytes + MULTIPART_SLACK;
        let body = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => RetrieveError::Instance(format!(
                    "the object is over the limit of {} bytes",
                    self.max_object_bytes
                )),
                e => RetrieveError::Server(transport(&url, e)),
            })?;
        first_dicom_part(&content_type, body).map_err(RetrieveError::Instance)
    }
}

/// The first `application/dicom` part of a `multipart/related` body.
fn first_dicom_part(content_type: &str, body: Vec<u8>) -> Result<Vec<u8>, String> {
    let mime: mime::Mime = content_type.parse().map_err(|_| {
        format!("the retrieval's content type {content_type:?} is not a media type")
    })?;
    if mime.type_() != mime::MULTIPART || mime.subtype() != "related" {
        return Err(format!(
            "the retrieval answered {content_type:?}, not multipart/related"
        ));
    }
    let boundary = mime
        .get_param(mime::BOUNDARY)
        .ok_or("the multipart answer names no boundary")?
        .to_string();
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let first = async move {
        while let Some(part) = parts
            .next_field()
            .await
            .map_err(|e| format!("the multipart answer is malformed: {e}"))?
        {
            let is_dicom = part
                .content_type()
                .is_none_or(|m| m.essence_str() == "application/dicom");
            if is_dicom {
                let bytes = part
                    .bytes()
                    .await
                    .map_err(|e| format!("the multipart answer is malformed: {e}"))?;
                return Ok(bytes.to_vec());
            }
        }
        Err("the multipart answer has no application/dicom part".to_string())
    };
    // The whole body is in memory, so nothing here ever waits: one poll
    // finishes it, and no runtime is needed.
    first
        .now_or_never()
        .unwrap_or_else(|| Err("the multipart parser waited on a body held in memory".into()))
}

/// The first string of a DICOM JSON attribute.
fn first_string(entry: &Value, tag: &str) -> Option<String> {
    entry
        .get(tag)?
        .get("Value")?
        .get(0)?
        .as_str()
        .map(str::to_string)
}

/// A UID is digits and dots, at most 64 characters (PS3.5 9.1); anything
/// else would become a path component and a URL segment.
pub(super) fn check_uid(uid: &str) -> Result<(), String> {
    let ok = !uid.is_empty()
        && uid.len() <= 64
        && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && !uid.starts_with('.')
        && !uid.contains("..");
    if ok {
        Ok(())
    } else {
        let shown: String = uid.chars().take(80).collect();
        Err(format!("{shown:?} is not a DICOM UID"))
    }
}

fn check_status(url: &str, status: u16) -> Result<(), DicomWebError> {
    match status {
        200..=299 => Ok(()),
        401 | 403 => Err(DicomWebError::Unauthorized {
            url: url.to_string(),
            status,
        }),
        _ => Err(DicomWebError::Status {
            url: url.to_string(),
            status,
        }),
    }
}

fn transport(url: &str, e: ureq::Error) -> DicomWebError {
    DicomWebError::Unreachable {
        url: url.to_string(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_digits_and_dots() {
        assert!(check_uid("1.2.840.10008.5.1.4.1.1.77.1.5.1").is_ok());
        for bad in [
            "",
            "../../etc",
            "1.2/3",
            "1..2",
            ".1",
            "1.2.3a",
            &"1".repeat(65),
        ] {
            assert!(check_uid(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_dicom_part_is_taken_from_a_multipart_answer() {
        let body = b"--B\r\nContent-Type: application/dicom\r\n\r\nDICMBYTES\r\n--B--\r\n".to_vec();
        let ct = "multipart/related; type=\"application/dicom\"; boundary=B";
        assert_eq!(first_dicom_part(ct, body).unwrap(), b"DICMBYTES");
        let other = b"--B\r\nContent-Type: text/plain\r\n\r\nhello\r\n--B--\r\n".to_vec();
        assert!(first_dicom_part(ct, other)
            .unwrap_err()
            .contains("no application/dicom"));
        assert!(first_dicom_part("application/dicom", Vec::new())
            .unwrap_err()
            .contains("not multipart/related"));
        assert!(first_dicom_part("multipart/related", Vec::new())
            .unwrap_err()
            .contains("boundary"));
    }

    #[test]
    fn cut_or_damaged_multipart_answers_are_errors_not_hangs() {
        let ct = "multipart/related; type=\"application/dicom\"; boundary=B";
        let whole = b"--B\r\nContent-Type: application/dicom\r\n\r\nDICMBYTES\r\n--B--\r\n";
        // Cut anywhere before the part's end: never a part, never a wait.
        for cut in 0..whole.len() - 8 {
            assert!(
                first_dicom_part(ct, whole[..cut].to_vec()).is_err(),
                "cut at {cut}"
            );
        }
        let endless_header = [b"--B\r\nContent-Type: ".as_slice(), &vec![b'a'; 1 << 20]].concat();
        assert!(first_dicom_part(ct, endless_header).is_err());
        assert!(first_dicom_part(ct, vec![0xff; 4096]).is_err());
    }
}
