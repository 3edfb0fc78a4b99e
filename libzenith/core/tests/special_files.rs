//! Paths that used to hang the library: FIFOs (given as the dataset, inside a shard directory,
//! matched by a glob, inside a sysfs tree) and directories that link back to themselves. Each
//! scenario runs in a child process with a timeout ([`common::isolated`]): a hang fails the test
//! instead of stalling the run.

mod common;
mod fake_sysfs;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::isolated::isolated;
use common::{BASIC_ROWS, data_file};
use fake_sysfs::FakeSysfs;
use zenith_core::dataset::discover::{MAX_DEPTH, discover};
use zenith_core::error::ErrorKind;
use zenith_core::loader::ShuffleMode;
use zenith_core::runtime::topology::Topology;
use zenith_core::{Loader, LoaderOptions};

const TIMEOUT: Duration = Duration::from_secs(60);

fn mkfifo(path: &Path) {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0, "mkfifo");
}

fn options() -> LoaderOptions {
    let mut o = LoaderOptions::default();
    o.set_batch_size(1000).unwrap();
    o.set_shuffle(ShuffleMode::None);
    o.set_num_workers(1).unwrap();
    o
}

/// Rows of one epoch.
fn rows(loader: &Loader) -> u64 {
    let mut rows = 0;
    while let Some(batch) = loader.next_batch().unwrap() {
        rows += batch.num_rows() as u64;
    }
    rows
}

fn copy_basic(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::copy(data_file("basic.arrow"), &path).unwrap();
    path
}

#[test]
fn a_fifo_given_as_the_dataset_is_refused_without_blocking() {
    isolated(
        "a_fifo_given_as_the_dataset_is_refused_without_blocking",
        TIMEOUT,
        || {
            let dir = tempfile::tempdir().unwrap();
            // A data extension does not make it a data file.
            for name in ["pipe", "pipe.arrow", "pipe.csv"] {
                let fifo = dir.path().join(name);
                mkfifo(&fifo);
                let err = Loader::open(&fifo, &options()).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
                let text = err.to_string();
                assert!(text.contains("not a regular file"), "{text}");
                assert!(text.contains(name), "{text}");
            }
            // Other special files too: a character device.
            let err = Loader::open("/dev/zero", &options()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        },
    );
}

#[test]
fn fifos_in_a_shard_directory_or_a_glob_are_skipped_and_reported() {
    isolated(
        "fifos_in_a_shard_directory_or_a_glob_are_skipped_and_reported",
        TIMEOUT,
        || {
            let dir = tempfile::tempdir().unwrap();
            copy_basic(dir.path(), "shards/a.arrow");
            mkfifo(&dir.path().join("shards/b.arrow"));
            std::fs::create_dir(dir.path().join("shards/sub")).unwrap();
            mkfifo(&dir.path().join("shards/sub/pipe"));
            for path in [dir.path().join("shards"), dir.path().join("shards/*.arrow")] {
                let loader = Loader::open(&path, &options()).unwrap();
                assert_eq!(rows(&loader), BASIC_ROWS, "{}", path.display());
                let notes = loader.io_fallback_reason().unwrap_or_default();
                assert!(
                    notes.contains("b.arrow") && notes.contains("not a regular file"),
                    "{notes}"
                );
            }
            // Nothing but FIFOs: no data files.
            let only = dir.path().join("only_fifos");
            std::fs::create_dir(&only).unwrap();
            mkfifo(&only.join("x.parquet"));
            let err = Loader::open(&only, &options()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        },
    );
}

#[test]
fn directories_that_link_back_to_themselves_are_walked_once() {
    isolated(
        "directories_that_link_back_to_themselves_are_walked_once",
        TIMEOUT,
        || {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("data");
            copy_basic(&root, "x/part-0.arrow");
            std::os::unix::fs::symlink("..", root.join("x/up")).unwrap();
            std::os::unix::fs::symlink(".", root.join("self")).unwrap();
            std::os::unix::fs::symlink(&root, root.join("x/absolute")).unwrap();
            let glob = |pattern: &str| PathBuf::from(format!("{}/{pattern}", root.display()));
            for path in [
                glob("**/*.arrow"),
                glob("**/*"),
                glob("*/*.arrow"),
                glob("x/**/part-?.arrow"),
                root.clone(),
            ] {
                let files = discover(&path).unwrap();
                assert_eq!(
                    files.iter().map(|f| f.path.clone()).collect::<Vec<_>>(),
                    [root.join("x/part-0.arrow")],
                    "{}",
                    path.display()
                );
                let loader = Loader::open(&path, &options()).unwrap();
                assert_eq!(rows(&loader), BASIC_ROWS, "{}", path.display());
                let notes = loader.io_fallback_reason().unwrap_or_default();
                if !path.ends_with("*/*.arrow") {
                    assert!(notes.contains("loops back"), "{}: {notes}", path.display());
                }
            }
        },
    );
}

#[test]
fn walks_deeper_than_the_limit_are_refused_with_a_clear_error() {
    isolated(
        "walks_deeper_than_the_limit_are_refused_with_a_clear_error",
        TIMEOUT,
        || {
            let dir = tempfile::tempdir().unwrap();
            let mut deep = dir.path().join("deep");
            for _ in 0..=MAX_DEPTH {
                deep.push("d");
            }
            copy_basic(&deep, "x.arrow");
            for path in [dir.path().join("deep"), dir.path().join("deep/**/*.arrow")] {
                let err = Loader::open(&path, &options()).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
                assert!(err.to_string().contains("levels deep"), "{err}");
            }
            // One level less is fine.
            let mut fine = dir.path().join("fine");
            for _ in 1..MAX_DEPTH {
                fine.push("d");
            }
            copy_basic(&fine, "x.arrow");
            let loader = Loader::open(dir.path().join("fine"), &options()).unwrap();
            assert_eq!(rows(&loader), BASIC_ROWS);
        },
    );
}

#[test]
fn a_fifo_in_a_sysfs_tree_is_refused_without_blocking() {
    isolated(
        "a_fifo_in_a_sysfs_tree_is_refused_without_blocking",
        TIMEOUT,
        || {
            for fifo in [
                "devices/system/cpu/online",
                "devices/system/node/node0/meminfo",
                "devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages",
                "bus/pci/devices/0000:17:00.0/class",
            ] {
                let fake = FakeSysfs::new();
                fake.node(0, "0-3", 1 << 20, 1 << 19, "10")
                    .dir("bus/pci/devices/0000:17:00.0")
                    .dir("devices/system/node/node0/hugepages/hugepages-2048kB")
                    .fifo(fifo);
                if !fifo.ends_with("online") {
                    fake.online("0-3");
                }
                let err = Topology::discover_at(fake.root()).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Format, "{fifo}: {err}");
                let text = err.to_string();
                assert!(text.contains("not a regular file"), "{text}");
                assert!(text.contains(fifo), "{text}");
            }
            // Reads are bounded: a huge file is refused, not read into memory.
            let fake = FakeSysfs::new();
            fake.online(&"0,".repeat(1 << 20));
            let err = Topology::discover_at(fake.root()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Format, "{err}");
            assert!(err.to_string().contains("larger than"), "{err}");
        },
    );
}
