//! Remote datasets: objects in S3, Google Cloud Storage, Azure Blob Storage / ADLS Gen2 or on a
//! plain HTTP(S) server, read by byte range through the `object_store` crate and served to the
//! sources as one more [`RangeRead`](super::RangeRead).
//!
//! A dataset path is remote when it is a URL whose scheme names a store ([`is_remote`]):
//! `s3://bucket/prefix/`, `s3://bucket/prefix/*.parquet`, `gs://`, `az://` / `abfss://`,
//! `http(s)://`. Each step is a file:
//!
//! * [`options`]: the storage options a user sets (endpoint, region, credentials, timeouts,
//!   retries, cache), checked when set.
//! * `store`: from a URL and the options to an `ObjectStore` (credentials from the options,
//!   else the environment and instance-metadata chains), one per bucket and options, shared.
//! * `bridge`: a small tokio runtime of the library's own, and the one blocking call with a
//!   deadline that worker threads use to wait on it.
//! * `fetch`: one request with retries (exponential back-off, a total deadline), and what a
//!   failure says (the object and the last HTTP status).
//! * `reader`: [`RemoteReader`]: ranged reads coalesced, split into parts fetched several at a
//!   time, a bounded read-ahead for sequential readers, the local cache in front.
//! * `cache`: the local cache (a directory, a byte cap, checksummed entries, LRU eviction).
//! * `list`: listing a prefix, with glob patterns.
//! * `metrics`: bytes fetched, requests, retries and cache hits, for Prometheus.

pub mod options;

#[cfg(feature = "remote")]
mod bridge;
#[cfg(feature = "remote")]
pub mod cache;
#[cfg(feature = "remote")]
mod fetch;
#[cfg(feature = "remote")]
mod list;
#[cfg(feature = "remote")]
pub mod metrics;
#[cfg(feature = "remote")]
mod reader;
#[cfg(feature = "remote")]
mod store;

use std::path::Path;

pub use options::StorageOptions;

#[cfg(feature = "remote")]
pub use list::{RemoteObject, list_objects};
#[cfg(feature = "remote")]
pub use reader::{RemoteConfig, RemoteReader};

/// The URL schemes read through object stores.
pub const SCHEMES: &[&str] = &[
    "s3", "s3a", "gs", "gcs", "az", "azure", "abfs", "abfss", "adl", "http", "https",
];

/// The scheme of a URL-like path (`s3` for `s3://bucket/key`), lowercased; `None` for a local
/// path (no `scheme://` prefix).
pub fn scheme_of(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    let (scheme, _) = text.split_once("://")?;
    let valid = !scheme.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

/// True when `path` is a URL with a scheme other than `file` (`s3://...`), supported or not:
/// such a path is never looked up on the local file system (`file://` URLs are local paths).
pub fn is_remote(path: &Path) -> bool {
    scheme_of(path).is_some_and(|scheme| scheme != "file")
}

/// Checks that the URL's scheme is one this build reads; the error names the scheme.
pub fn check_scheme(path: &Path) -> crate::Result<()> {
    let scheme = scheme_of(path).unwrap_or_default();
    if !SCHEMES.contains(&scheme.as_str()) {
        return Err(crate::Error::Unsupported(format!(
            "{}: the URL scheme {scheme:?} is not supported (supported: s3://, gs://, az://, \
             abfss://, http://, https://, file://, or a local path)",
            path.display()
        )));
    }
    if !cfg!(feature = "remote") {
        return Err(crate::Error::Unsupported(format!(
            "{}: remote paths need zenith-core's `remote` feature, which this build was made \
             without",
            path.display()
        )));
    }
    Ok(())
}

/// Opens the remote object `path` for ranged reads.
#[cfg(feature = "remote")]
pub fn open(
    path: &Path,
    storage: &StorageOptions,
    stats: &std::sync::Arc<super::IoStats>,
) -> std::io::Result<std::sync::Arc<dyn super::RangeRead>> {
    check_scheme(path).map_err(std::io::Error::other)?;
    let (store, location) = store::store_for(path, storage).map_err(std::io::Error::other)?;
    let config = RemoteConfig::from_options(storage).map_err(std::io::Error::other)?;
    let cache = cache::cache_for(storage).map_err(std::io::Error::other)?;
    let url = path.to_string_lossy().into_owned();
    let reader = RemoteReader::open(url, store, location, config, cache, stats.clone())?;
    Ok(std::sync::Arc::new(reader))
}

/// Without the `remote` feature: remote paths are unsupported.
#[cfg(not(feature = "remote"))]
pub fn open(
    path: &Path,
    _storage: &StorageOptions,
    _stats: &std::sync::Arc<super::IoStats>,
) -> std::io::Result<std::sync::Arc<dyn super::RangeRead>> {
    Err(std::io::Error::other(check_scheme(path).err().map_or_else(
        || "remote paths are not supported by this build".to_string(),
        |e| e.to_string(),
    )))
}

#[cfg(all(test, feature = "remote"))]
mod tests;

#[cfg(test)]
mod scheme_tests {
    use super::*;

    #[test]
    fn urls_are_told_from_local_paths() {
        assert_eq!(
            scheme_of(Path::new("s3://bucket/a.parquet")).as_deref(),
            Some("s3")
        );
        assert_eq!(
            scheme_of(Path::new("HTTPS://h/x")).as_deref(),
            Some("https")
        );
        assert_eq!(scheme_of(Path::new("data/x.parquet")), None);
        assert_eq!(scheme_of(Path::new("/abs/s3://x")), None);
        assert_eq!(scheme_of(Path::new("://x")), None);
        assert!(check_scheme(Path::new("s3://b/k")).is_ok());
        let err = check_scheme(Path::new("ftp://host/x")).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Unsupported);
        assert!(err.to_string().contains("ftp://"), "{err}");
    }
}
