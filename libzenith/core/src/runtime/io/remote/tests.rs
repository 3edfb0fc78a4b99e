//! Unit tests of the remote reader against `object_store`'s in-memory store, slowed down by its
//! `ThrottledStore`, and of the retry loop against scripted failures.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::throttle::{ThrottleConfig, ThrottledStore};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::bridge::block_on;
use super::cache::DiskCache;
use super::fetch::{RetryPolicy, with_retries};
use super::metrics::metrics;
use super::reader::{RemoteConfig, RemoteReader, assemble, plan_parts};
use crate::runtime::io::{IoBackend, IoStats, RangeRead};

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 977) as u8).collect()
}

/// An in-memory store holding `data` at `key`, each request delayed by `latency`.
fn store_with(key: &str, data: &[u8], latency: Duration) -> Arc<dyn ObjectStore> {
    let memory = InMemory::new();
    let path = ObjectPath::from(key);
    let payload = PutPayload::from(data.to_vec());
    block_on(
        async move { memory.put(&path, payload).await.map(|_| memory) },
        soon(),
        "put",
    )
    .unwrap()
    .map(|memory| {
        let config = ThrottleConfig {
            wait_get_per_call: latency,
            ..ThrottleConfig::default()
        };
        Arc::new(ThrottledStore::new(memory, config)) as Arc<dyn ObjectStore>
    })
    .unwrap()
}

fn open(
    store: Arc<dyn ObjectStore>,
    config: RemoteConfig,
    cache: Option<Arc<DiskCache>>,
) -> RemoteReader {
    RemoteReader::open(
        "mem://bucket/obj".into(),
        store,
        ObjectPath::from("obj"),
        config,
        cache,
        Arc::new(IoStats::new(IoBackend::Pread)),
    )
    .unwrap()
}

#[test]
fn parts_coalesce_nearby_ranges_and_split_large_ones() {
    let parts = plan_parts(&[100..200, 0..10, 250..300, 10_000..10_001, 5..5], 64, 1000);
    assert_eq!(parts, vec![0..10, 100..300, 10_000..10_001]);
    let parts = plan_parts(std::slice::from_ref(&(0..2500)), 0, 1000);
    assert_eq!(parts, vec![0..1000, 1000..2000, 2000..2500]);
    // Overlapping ranges merge.
    assert_eq!(plan_parts(&[0..100, 50..150], 0, 1 << 20), vec![0..150]);

    let data = Bytes::from(sample(3000));
    let parts = plan_parts(std::slice::from_ref(&(0..2500)), 0, 1000);
    let fetched: Vec<Bytes> = parts
        .iter()
        .map(|p| data.slice(p.start as usize..p.end as usize))
        .collect();
    for range in [0..10u64, 990..1010, 0..2500, 1500..1500, 999..2001] {
        assert_eq!(
            assemble(&range, &parts, &fetched),
            data.slice(range.start as usize..range.end as usize),
            "{range:?}"
        );
    }
}

#[test]
fn reads_through_a_slow_store_return_the_object_s_bytes() {
    let data = sample((3 << 20) + 12_345);
    let store = store_with("obj", &data, Duration::from_millis(5));
    let config = RemoteConfig {
        part_size: 256 << 10,
        coalesce_gap: 1024,
        tail_bytes: 4096,
        ..RemoteConfig::default()
    };
    let reader = open(store, config, None);
    assert_eq!(reader.len(), data.len() as u64);
    let len = data.len() as u64;
    let ranges: Vec<Range<u64>> = vec![
        0..1,
        5..5,
        100..5000,
        5500..9000,
        len - 10..len,
        777..(2 << 20) + 999,
        0..len,
    ];
    let before = metrics().requests.raw();
    let parts = reader.read_ranges(&ranges).unwrap();
    for (range, part) in ranges.iter().zip(&parts) {
        assert_eq!(
            &part[..],
            &data[range.start as usize..range.end as usize],
            "{range:?}"
        );
    }
    assert!(metrics().requests.raw() > before);
    // The footer region comes from the tail fetched at open.
    assert_eq!(
        &reader.read_range(len - 100..len).unwrap()[..],
        &data[data.len() - 100..]
    );
    assert!(reader.read_range(0..len + 1).is_err());

    // Sequential reads (as CSV's) get the next block fetched ahead, with the same bytes.
    let mut all = Vec::new();
    std::io::Read::read_to_end(
        &mut crate::runtime::io::SequentialRead::new(Arc::new(reader), 0, 100_000),
        &mut all,
    )
    .unwrap();
    assert!(all == data);
}

#[test]
fn the_cache_serves_a_second_pass_without_requests() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(1 << 20);
    let cache = Arc::new(DiskCache::open(dir.path(), 64 << 20).unwrap());
    let store = store_with("obj", &data, Duration::ZERO);
    let config = RemoteConfig {
        part_size: 64 << 10,
        tail_bytes: 1024,
        ..RemoteConfig::default()
    };
    let ranges = vec![0..300_000u64, 400_000..700_000];
    let first = open(store.clone(), config, Some(cache.clone()));
    let hits = metrics().cache_hits.raw();
    let a = first.read_ranges(&ranges).unwrap();
    assert!(cache.total_bytes() >= 600_000);
    let second = open(store, config, Some(cache.clone()));
    let b = second.read_ranges(&ranges).unwrap();
    assert_eq!(a, b);
    assert_eq!(&b[1][..], &data[400_000..700_000]);
    // 5 + 5 parts of 64 KiB each range, all hits the second time.
    assert!(metrics().cache_hits.raw() >= hits + 10);
}

#[test]
fn failures_are_retried_with_back_off_until_the_deadline() {
    let policy = RetryPolicy {
        retries: 5,
        deadline: Duration::from_secs(30),
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
    };
    // Two 503s, then success.
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let retries = metrics().retries.raw();
    let got = block_on(
        async move {
            with_retries(policy, "GET x", || {
                let n = counter.fetch_add(1, SeqCst);
                async move {
                    if n < 2 {
                        Err(object_store::Error::Generic {
                            store: "test",
                            source: "Server returned non-2xx status code: 503 Service \
                                     Unavailable: busy"
                                .into(),
                        })
                    } else {
                        Ok(n)
                    }
                }
            })
            .await
        },
        soon(),
        "retry",
    )
    .unwrap()
    .unwrap();
    assert_eq!(got, 2);
    assert_eq!(calls.load(SeqCst), 3);
    assert!(metrics().retries.raw() >= retries + 2);

    // Always 503: the retries run out, the error names the request and the last status.
    let err = block_on(
        async move {
            with_retries(policy, "GET bytes 0-9 of s3://b/k", || async {
                Err::<(), _>(object_store::Error::Generic {
                    store: "test",
                    source: "Server returned non-2xx status code: 503 Service Unavailable: x"
                        .into(),
                })
            })
            .await
        },
        soon(),
        "retry",
    )
    .unwrap()
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("s3://b/k"), "{text}");
    assert!(text.contains("after 5 retries"), "{text}");
    assert!(
        text.contains("last HTTP status 503 Service Unavailable"),
        "{text}"
    );

    // Not found is not retried.
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let err = block_on(
        async move {
            with_retries(policy, "GET k", || {
                counter.fetch_add(1, SeqCst);
                async {
                    Err::<(), _>(object_store::Error::NotFound {
                        path: "k".into(),
                        source: "no such key".into(),
                    })
                }
            })
            .await
        },
        soon(),
        "retry",
    )
    .unwrap()
    .unwrap_err();
    assert_eq!(calls.load(SeqCst), 1);
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(err.to_string().contains("404 Not Found"), "{err}");

    // A deadline shorter than the back-off: one attempt, then the error.
    let short = RetryPolicy {
        deadline: Duration::from_millis(50),
        initial_backoff: Duration::from_millis(200),
        ..policy
    };
    let err = block_on(
        async move {
            with_retries(short, "GET k", || async {
                Err::<(), _>(object_store::Error::Generic {
                    store: "test",
                    source: "error sending request: connection refused".into(),
                })
            })
            .await
        },
        soon(),
        "retry",
    )
    .unwrap()
    .unwrap_err();
    assert!(err.to_string().contains("no HTTP response"), "{err}");
}

#[test]
fn an_object_replaced_after_open_is_an_error_not_a_mix_of_versions() {
    let data = sample(200_000);
    let store = store_with("obj", &data, Duration::ZERO);
    let config = RemoteConfig {
        tail_bytes: 1024,
        ..RemoteConfig::default()
    };
    let reader = open(store.clone(), config, None);
    assert_eq!(&reader.read_range(0..1000).unwrap()[..], &data[..1000]);
    // The same length, other bytes: only the ETag tells the versions apart.
    let replacement = PutPayload::from(sample(200_001)[1..].to_vec());
    block_on(
        async move { store.put(&ObjectPath::from("obj"), replacement).await },
        soon(),
        "put",
    )
    .unwrap()
    .unwrap();
    let err = reader.read_range(5000..6000).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::StaleNetworkFileHandle);
    let text = err.to_string();
    assert!(text.contains("mem://bucket/obj"), "{text}");
    assert!(text.contains("changed since it was opened"), "{text}");
    assert!(text.contains("412 Precondition Failed"), "{text}");
    // The tail read at open is still the version opened.
    assert_eq!(
        &reader.read_range(199_000..200_000).unwrap()[..],
        &data[199_000..]
    );
}
