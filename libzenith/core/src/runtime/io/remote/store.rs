//! From a URL and the storage options to an `ObjectStore` and the object's path in it.
//!
//! One store per (scheme, bucket or host, options) in the process, shared by every file and
//! dataset that names it: its connection pool and credential cache are reused. Credentials come
//! from the options when given, else from the store's standard chain (`AWS_*`, `GOOGLE_*`,
//! `AZURE_*` environment variables, then instance metadata), which `from_env` sets up.
//! `object_store`'s own retries are off: `fetch` retries, counts and bounds them.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{ClientConfigKey, RetryConfig};

use super::options::StorageOptions;
use crate::error::{Error, Result};

/// Storage options that Zenith reads itself and never hands to a store's builder.
const ZENITH_ONLY: &[&str] = &[
    "path_style",
    "request_timeout",
    "connect_timeout",
    "retries",
    "retry_timeout",
    "concurrency",
    "read_ahead_bytes",
    "cache_dir",
    "cache_max_bytes",
];

/// A URL split into what a store needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ObjectUrl {
    /// `s3`, `gs`, `az`, `abfss`, `https`, ... (lowercase).
    pub scheme: String,
    /// The bucket, container (`container@account.host` for abfss) or host.
    pub authority: String,
    /// The key below it, without a leading `/` (may be empty or end in `/`).
    pub key: String,
}

impl ObjectUrl {
    /// Splits `path`, a URL with a scheme.
    pub fn parse(path: &Path) -> Result<Self> {
        let text = path.to_str().ok_or_else(|| {
            Error::InvalidArgument(format!("{}: a URL must be UTF-8", path.display()))
        })?;
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| Error::InvalidArgument(format!("{text}: not a URL (no scheme://)")))?;
        let (authority, key) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{text}: the URL names no bucket or host"
            )));
        }
        Ok(ObjectUrl {
            scheme: scheme.to_ascii_lowercase(),
            authority: authority.to_string(),
            key: key.to_string(),
        })
    }

    /// The URL of `key` in the same bucket.
    pub fn with_key(&self, key: &str) -> String {
        format!("{}://{}/{key}", self.scheme, self.authority)
    }

    /// The object's path in its store.
    pub fn location(&self) -> ObjectPath {
        if self.is_http() {
            ObjectPath::from_url_path(&self.key)
                .unwrap_or_else(|_| ObjectPath::from(self.key.as_str()))
        } else {
            ObjectPath::from(self.key.as_str())
        }
    }

    /// An `http://` or `https://` URL: a plain web server.
    pub fn is_http(&self) -> bool {
        matches!(self.scheme.as_str(), "http" | "https")
    }

    fn is_gcs(&self) -> bool {
        matches!(self.scheme.as_str(), "gs" | "gcs")
    }

    fn is_azure(&self) -> bool {
        matches!(
            self.scheme.as_str(),
            "az" | "azure" | "abfs" | "abfss" | "adl"
        )
    }
}

type StoreKey = (String, String, StorageOptions);

/// The store for `path`'s bucket (built on first use, then shared) and the object's path in it.
pub(super) fn store_for(
    path: &Path,
    options: &StorageOptions,
) -> Result<(Arc<dyn ObjectStore>, ObjectPath)> {
    let url = ObjectUrl::parse(path)?;
    let store = store_of(&url, options)?;
    Ok((store, url.location()))
}

/// The store for `url`'s bucket, shared.
pub(super) fn store_of(url: &ObjectUrl, options: &StorageOptions) -> Result<Arc<dyn ObjectStore>> {
    static STORES: OnceLock<Mutex<HashMap<StoreKey, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let key = (url.scheme.clone(), url.authority.clone(), options.clone());
    let stores = STORES.get_or_init(Default::default);
    if let Some(store) = stores.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(store.clone());
    }
    let store = build(url, options)?;
    stores
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, store.clone());
    Ok(store)
}

/// TLS through rustls with ring's primitives (no C build): installed as the process default
/// unless the host application installed one already, which is then used.
fn install_tls_provider() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

fn millis(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// The `(key, value)` pairs handed to the builder: Zenith's names translated, the rest as given.
fn builder_pairs(url: &ObjectUrl, options: &StorageOptions) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for (key, value) in options.iter() {
        if ZENITH_ONLY.contains(&key) {
            continue;
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    if let Some(timeout) = options.duration("request_timeout")? {
        pairs.push(("timeout".into(), millis(timeout)));
    }
    if let Some(timeout) = options.duration("connect_timeout")? {
        pairs.push(("connect_timeout".into(), millis(timeout)));
    }
    if let Some(path_style) = options.flag("path_style")?
        && url.scheme.starts_with("s3")
    {
        pairs.push((
            "virtual_hosted_style_request".into(),
            (!path_style).to_string(),
        ));
    }
    // A plain-http endpoint the user named is a local server: allow it unless told otherwise.
    let plain_endpoint = options
        .get("endpoint")
        .or(options.get("endpoint_url"))
        .or(options.get("aws_endpoint"))
        .is_some_and(|e| e.starts_with("http://"));
    if (plain_endpoint || url.scheme == "http") && options.get("allow_http").is_none() {
        pairs.push(("allow_http".into(), "true".into()));
    }
    if url.is_gcs() {
        // Google's builder calls the endpoint its base URL (a local fake-gcs-server's address).
        for (key, _) in &mut pairs {
            if key == "endpoint" {
                *key = "google_base_url".into();
            }
        }
    }
    if url.is_azure() {
        azure_emulator_endpoint(&mut pairs);
    }
    Ok(pairs)
}

/// The development account of Azure's storage emulator (Azurite), and its key, published with
/// the emulator: a local emulator checks requests signed with it.
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// `use_emulator=true` with an `endpoint` (Azurite at `http://127.0.0.1:PORT`): object_store's
/// emulator mode takes its address from the environment only, so the pair becomes what that
/// mode does, an account path under the endpoint (`http://127.0.0.1:PORT/devstoreaccount1`),
/// with the emulator's account and key unless others are given.
fn azure_emulator_endpoint(pairs: &mut Vec<(String, String)>) {
    let key_of = |k: &str| AzureConfigKey::from_str(k).ok();
    let emulator = pairs
        .iter()
        .find(|(k, _)| key_of(k) == Some(AzureConfigKey::UseEmulator))
        .map(|(_, v)| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "true" | "1" | "yes" | "on"
            )
        });
    let endpoint = pairs
        .iter()
        .find(|(k, _)| key_of(k) == Some(AzureConfigKey::Endpoint))
        .map(|(_, v)| v.trim_end_matches('/').to_string());
    let (Some(true), Some(endpoint)) = (emulator, endpoint) else {
        return;
    };
    let account = pairs
        .iter()
        .find(|(k, _)| key_of(k) == Some(AzureConfigKey::AccountName))
        .map_or(AZURITE_ACCOUNT.to_string(), |(_, v)| v.clone());
    let has_credential = pairs.iter().any(|(k, _)| {
        matches!(
            key_of(k),
            Some(AzureConfigKey::AccessKey | AzureConfigKey::SasKey | AzureConfigKey::Token)
        )
    });
    pairs.retain(|(k, _)| {
        !matches!(
            key_of(k),
            Some(
                AzureConfigKey::UseEmulator
                    | AzureConfigKey::Endpoint
                    | AzureConfigKey::AccountName
            )
        )
    });
    pairs.push((
        "azure_storage_endpoint".into(),
        format!("{endpoint}/{account}"),
    ));
    pairs.push(("azure_storage_account_name".into(), account));
    if !has_credential {
        pairs.push(("azure_storage_account_key".into(), AZURITE_KEY.into()));
    }
}

fn unknown(url: &ObjectUrl, key: &str) -> Error {
    Error::InvalidArgument(format!(
        "storage option {key:?} does not apply to {}:// stores",
        url.scheme
    ))
}

fn store_error(url: &ObjectUrl, error: object_store::Error) -> Error {
    Error::InvalidArgument(format!(
        "{}://{}: cannot set up the store: {error}",
        url.scheme, url.authority
    ))
}

/// Builds the store for `url`'s bucket.
fn build(url: &ObjectUrl, options: &StorageOptions) -> Result<Arc<dyn ObjectStore>> {
    install_tls_provider();
    let pairs = builder_pairs(url, options)?;
    let retry = RetryConfig {
        max_retries: 0,
        ..RetryConfig::default()
    };
    // Keys of the other stores' families are ignored (one set of options may serve a dataset
    // that mixes schemes); Zenith's generic names apply to every store that has them.
    let foreign = |key: &str, own: &str| {
        ["aws_", "google_", "azure_"]
            .iter()
            .any(|p| key.starts_with(p) && !key.starts_with(own))
    };
    let store: Arc<dyn ObjectStore> = match url.scheme.as_str() {
        "s3" | "s3a" => {
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(&url.authority)
                .with_retry(retry);
            for (key, value) in &pairs {
                match AmazonS3ConfigKey::from_str(key) {
                    Ok(k) => builder = builder.with_config(k, value),
                    Err(_) if foreign(key, "aws_") => {}
                    Err(_) => return Err(unknown(url, key)),
                }
            }
            Arc::new(builder.build().map_err(|e| store_error(url, e))?)
        }
        _ if url.is_gcs() => {
            let mut builder = GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(&url.authority)
                .with_retry(retry);
            for (key, value) in &pairs {
                match GoogleConfigKey::from_str(key) {
                    Ok(k) => builder = builder.with_config(k, value),
                    Err(_) if foreign(key, "google_") || is_s3_generic(key) => {}
                    Err(_) => return Err(unknown(url, key)),
                }
            }
            Arc::new(builder.build().map_err(|e| store_error(url, e))?)
        }
        _ if url.is_azure() => {
            let mut builder = MicrosoftAzureBuilder::from_env()
                .with_url(format!("{}://{}", url.scheme, url.authority))
                .with_retry(retry);
            for (key, value) in &pairs {
                match AzureConfigKey::from_str(key) {
                    Ok(k) => builder = builder.with_config(k, value),
                    Err(_) if foreign(key, "azure_") || is_s3_generic(key) => {}
                    Err(_) => return Err(unknown(url, key)),
                }
            }
            Arc::new(builder.build().map_err(|e| store_error(url, e))?)
        }
        _ if url.is_http() => {
            let mut builder = HttpBuilder::new()
                .with_url(format!("{}://{}", url.scheme, url.authority))
                .with_retry(retry);
            // Only the HTTP client's keys apply; credentials of the clouds do not.
            for (key, value) in &pairs {
                if let Ok(k) = ClientConfigKey::from_str(key) {
                    builder = builder.with_config(k, value);
                }
            }
            Arc::new(builder.build().map_err(|e| store_error(url, e))?)
        }
        other => {
            return Err(Error::Unsupported(format!(
                "the URL scheme {other}:// is not supported"
            )));
        }
    };
    Ok(store)
}

/// Zenith's S3-flavoured generic names, which other stores do not take.
fn is_s3_generic(key: &str) -> bool {
    matches!(
        key,
        "endpoint"
            | "region"
            | "access_key_id"
            | "secret_access_key"
            | "session_token"
            | "virtual_hosted_style_request"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_bucket_and_key() {
        let url = ObjectUrl::parse(Path::new("s3://bucket/a/b.parquet")).unwrap();
        assert_eq!(url.scheme, "s3");
        assert_eq!(url.authority, "bucket");
        assert_eq!(url.key, "a/b.parquet");
        assert_eq!(url.location().as_ref(), "a/b.parquet");
        assert_eq!(url.with_key("c"), "s3://bucket/c");
        let root = ObjectUrl::parse(Path::new("gs://bucket")).unwrap();
        assert_eq!(root.key, "");
        assert!(ObjectUrl::parse(Path::new("s3:///key")).is_err());
    }

    #[test]
    fn s3_stores_build_from_options_and_reject_foreign_keys() {
        let mut options = StorageOptions::new();
        options.set("endpoint", "http://127.0.0.1:1").unwrap();
        options.set("access_key_id", "a").unwrap();
        options.set("secret_access_key", "b").unwrap();
        options.set("path_style", "true").unwrap();
        options.set("google_service_account_key", "{}").unwrap();
        assert!(store_for(Path::new("s3://bucket/k"), &options).is_ok());
        let mut options = StorageOptions::new();
        options.set("azure_storage_account_name", "x").unwrap();
        options.set("timeout", "5s").unwrap();
        assert!(store_for(Path::new("s3://bucket/k"), &options).is_ok());
    }
}
