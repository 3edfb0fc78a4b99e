//! Storage options: what a user tells Zenith about the object stores a dataset lives in, as
//! key/value text (the convention of fsspec's and pyarrow's `storage_options`).
//!
//! Zenith's own keys (see [`KEYS`]) are checked when they are set. Any other key must be one
//! `object_store` knows for S3 (`aws_*`), Google Cloud Storage (`google_*`), Azure (`azure_*`) or
//! its HTTP client: those are handed to the store's builder as they are.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Error, Result};

/// Zenith's own storage option keys, with what each means.
pub const KEYS: &[(&str, &str)] = &[
    (
        "endpoint",
        "the store's URL (an S3-compatible server: http://127.0.0.1:9000)",
    ),
    ("region", "the bucket's region"),
    (
        "path_style",
        "true: http://endpoint/bucket/key (default); false: virtual-hosted style",
    ),
    (
        "allow_http",
        "true: allow plain http:// endpoints (local servers)",
    ),
    (
        "access_key_id",
        "the access key (else the environment / instance metadata)",
    ),
    ("secret_access_key", "the secret key"),
    ("session_token", "a session token for temporary credentials"),
    ("skip_signature", "true: unsigned requests (public buckets)"),
    (
        "request_timeout",
        "the longest one request may take (seconds, or e.g. 30s); default 30s",
    ),
    (
        "connect_timeout",
        "the longest a connection may take to open; default 5s",
    ),
    (
        "retries",
        "how many times a failed request is retried; default 10",
    ),
    (
        "retry_timeout",
        "the total deadline of one read with its retries; default 120s",
    ),
    (
        "concurrency",
        "ranged requests in flight per read; default 8",
    ),
    (
        "read_ahead_bytes",
        "bytes a sequential reader may fetch ahead, per process; default 64 MiB",
    ),
    (
        "cache_dir",
        "a directory caching fetched ranges across epochs and runs",
    ),
    (
        "cache_max_bytes",
        "the cache's size cap in bytes (least recently used evicted); default 10 GiB",
    ),
];

/// Storage options, by key (lowercase). Cheap to clone; compared by value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct StorageOptions {
    values: BTreeMap<String, String>,
}

impl StorageOptions {
    /// No options: credentials and settings from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` (case-insensitive) to `value`. An unknown key, or a value that does not parse
    /// for a key Zenith reads, is an [`Error::InvalidArgument`] naming it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err(Error::InvalidArgument(
                "storage option: the key is empty".into(),
            ));
        }
        if !is_known(&key) {
            let ours: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
            return Err(Error::InvalidArgument(format!(
                "storage option {key:?} is not known (Zenith's keys: {}; or any object_store \
                 key: aws_*, google_*, azure_*)",
                ours.join(", ")
            )));
        }
        let options = StorageOptions {
            values: BTreeMap::from([(key.clone(), value.to_string())]),
        };
        // Typed keys parse now, so the error points at the setter.
        match key.as_str() {
            "path_style" | "allow_http" | "skip_signature" => {
                options.flag(&key)?;
            }
            "request_timeout" | "connect_timeout" | "retry_timeout" => {
                options.duration(&key)?;
            }
            "retries" | "concurrency" | "read_ahead_bytes" | "cache_max_bytes" => {
                options.number(&key)?;
            }
            _ => {}
        }
        self.values.insert(key, value.to_string());
        Ok(())
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Every option, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// A boolean option (`true`/`false`, `1`/`0`, `yes`/`no`).
    pub fn flag(&self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(bad(key, v, "true or false")),
            })
            .transpose()
    }

    /// A non-negative integer option.
    pub fn number(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| bad(key, v, "a whole number"))
            })
            .transpose()
    }

    /// A duration option: seconds (`30`, `0.5`) or with a unit (`30s`, `500ms`, `2m`).
    pub fn duration(&self, key: &str) -> Result<Option<Duration>> {
        self.get(key)
            .map(|v| parse_duration(v).ok_or_else(|| bad(key, v, "seconds, or e.g. 30s / 500ms")))
            .transpose()
    }
}

fn bad(key: &str, value: &str, expected: &str) -> Error {
    Error::InvalidArgument(format!(
        "storage option {key}={value:?}: expected {expected}"
    ))
}

/// `30`, `0.5`, `30s`, `500ms`, `2m`: a duration; `None` otherwise.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let seconds = number.trim().parse::<f64>().ok()? * scale;
    (0.0..1e9)
        .contains(&seconds)
        .then(|| Duration::from_secs_f64(seconds))
}

/// Whether `key` is Zenith's or one an object store's builder takes.
fn is_known(key: &str) -> bool {
    if KEYS.iter().any(|(k, _)| *k == key) {
        return true;
    }
    #[cfg(feature = "remote")]
    {
        use std::str::FromStr;
        object_store::aws::AmazonS3ConfigKey::from_str(key).is_ok()
            || object_store::gcp::GoogleConfigKey::from_str(key).is_ok()
            || object_store::azure::AzureConfigKey::from_str(key).is_ok()
            || object_store::ClientConfigKey::from_str(key).is_ok()
    }
    #[cfg(not(feature = "remote"))]
    {
        key.starts_with("aws_") || key.starts_with("google_") || key.starts_with("azure_")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_checked_when_set() {
        let mut options = StorageOptions::new();
        options.set("Endpoint", "http://127.0.0.1:9000").unwrap();
        assert_eq!(options.get("endpoint"), Some("http://127.0.0.1:9000"));
        options.set("allow_http", "true").unwrap();
        assert_eq!(options.flag("allow_http").unwrap(), Some(true));
        options.set("retry_timeout", "1.5").unwrap();
        assert_eq!(
            options.duration("retry_timeout").unwrap(),
            Some(Duration::from_millis(1500))
        );
        options.set("request_timeout", "250ms").unwrap();
        options.set("aws_sse_kms_key_id", "k").unwrap();
        let err = options.set("nonsense", "1").unwrap_err();
        assert!(
            err.to_string().contains("\"nonsense\" is not known"),
            "{err}"
        );
        assert!(options.set("retries", "many").is_err());
        assert!(options.set("allow_http", "perhaps").is_err());
        assert!(options.set("retry_timeout", "-3").is_err());
        assert!(options.set("", "x").is_err());
    }
}
