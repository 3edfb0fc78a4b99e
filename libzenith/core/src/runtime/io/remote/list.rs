//! Listing the objects under a prefix (recursively, one request per "directory" level), with
//! retries, bounded in the number of objects. An `http(s)://` "directory" is listed with
//! WebDAV's `PROPFIND` (object_store's HTTP store), which plain web servers do not answer.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;

use super::bridge::block_on;
use super::fetch::with_retries;
use super::options::StorageOptions;
use super::reader::RemoteConfig;
use super::store::{ObjectUrl, store_of};
use crate::error::{Error, Result};

/// An object found by a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteObject {
    /// Its URL (`s3://bucket/key`).
    pub url: String,
    /// Its key relative to the listed prefix.
    pub relative: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Every object under the prefix that `url` names (`s3://bucket/dir/`; the key is taken as a
/// directory whether or not it ends in `/`), at most `max_objects` (more is an
/// [`Error::InvalidArgument`]). Sorted by key.
pub fn list_objects(
    url: &Path,
    options: &StorageOptions,
    max_objects: usize,
) -> Result<Vec<RemoteObject>> {
    let parsed = ObjectUrl::parse(url)?;
    let store = store_of(&parsed, options)?;
    let config = RemoteConfig::from_options(options)?;
    let prefix = parsed.key.trim_end_matches('/').to_string();
    let what = format!("LIST {}", url.display());
    let listed = block_on(
        walk(store, prefix.clone(), config, what.clone(), max_objects),
        Instant::now() + config.retry.deadline * 4 + Duration::from_secs(10),
        &what,
    )
    .map_err(|e| Error::io(url, e))?
    .map_err(|e| match e.to_string() {
        // A plain web server lists nothing: HTTP "directories" are read by WebDAV's PROPFIND,
        // which it refuses (405, 501), or answers with a page that is no WebDAV listing.
        text if parsed.is_http()
            && ["status 405", "status 501", "PROPFIND"]
                .iter()
                .any(|w| text.contains(w)) =>
        {
            Error::Unsupported(format!(
                "{}: the HTTP server did not answer a WebDAV listing (PROPFIND); give the URL of \
             each file, or serve the files over WebDAV ({text})",
                url.display()
            ))
        }
        _ => Error::io(url, e),
    })?;
    let Some(mut objects) = listed else {
        return Err(Error::InvalidArgument(format!(
            "{}: more than {max_objects} objects under the prefix; give a narrower prefix or glob",
            url.display()
        )));
    };
    objects.sort_by(|a, b| a.0.cmp(&b.0));
    let base = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    Ok(objects
        .into_iter()
        .map(|(key, size)| RemoteObject {
            url: parsed.with_key(&key),
            relative: key.strip_prefix(&base).unwrap_or(&key).to_string(),
            size,
        })
        .collect())
}

/// Lists `prefix` level by level; `None` past `max_objects`.
async fn walk(
    store: Arc<dyn ObjectStore>,
    prefix: String,
    config: RemoteConfig,
    what: String,
    max_objects: usize,
) -> std::io::Result<Option<Vec<(String, u64)>>> {
    let mut objects = Vec::new();
    let mut pending = vec![prefix];
    while let Some(dir) = pending.pop() {
        let location = (!dir.is_empty()).then(|| ObjectPath::from(dir.as_str()));
        let listed = with_retries(config.retry, &what, || {
            let store = store.clone();
            let location = location.clone();
            async move { store.list_with_delimiter(location.as_ref()).await }
        })
        .await?;
        for meta in listed.objects {
            objects.push((meta.location.to_string(), meta.size));
        }
        if objects.len() > max_objects {
            return Ok(None);
        }
        pending.extend(listed.common_prefixes.iter().map(|p| p.to_string()));
    }
    Ok(Some(objects))
}
