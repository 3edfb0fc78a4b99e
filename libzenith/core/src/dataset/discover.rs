//! From the path a user gives (a file, a directory of shards, or a glob) to the ordered list of
//! data files and their formats.

use std::path::{Path, PathBuf};

use super::registry::Format;
use crate::error::{Error, Result};

/// A data file found under the user's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// Where it is.
    pub path: PathBuf,
    /// What it holds.
    pub format: Format,
}

/// Lists the data files `path` names, in a stable order.
///
/// * A file is itself, whatever its extension, if its content or extension names a format.
/// * A directory is searched recursively; files are sorted by path; hidden files and those
///   starting with `_` (`_SUCCESS`, `_metadata`) are skipped, as are files of no known format.
/// * A path with glob characters (`*`, `?`, `[`) that does not exist as such is expanded, sorted.
///
/// No file found is [`Error::NotFound`].
pub fn discover(path: &Path) -> Result<Vec<DataFile>> {
    let files = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            let mut files = Vec::new();
            walk(path, &mut files)?;
            files.sort_by(|a, b| a.path.cmp(&b.path));
            files
        }
        Ok(_) => {
            let format = Format::detect(path)?.ok_or_else(|| {
                Error::format(
                    path,
                    "not a recognised dataset file (expected Arrow IPC, Parquet or a .csv file)",
                )
            })?;
            vec![DataFile {
                path: path.to_path_buf(),
                format,
            }]
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_glob(path) => expand_glob(path)?,
        Err(e) => return Err(Error::io(path, e)),
    };
    if files.is_empty() {
        return Err(Error::not_found(path, "no data files found"));
    }
    Ok(files)
}

fn is_glob(path: &Path) -> bool {
    path.to_string_lossy().contains(['*', '?', '['])
}

fn is_skipped_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') || n.starts_with('_'))
}

fn walk(dir: &Path, out: &mut Vec<DataFile>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if is_skipped_name(&path) {
            continue;
        }
        // Follow symlinks: shards are often links into a shared store.
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        if meta.is_dir() {
            walk(&path, out)?;
        } else if let Some(format) = Format::detect(&path)? {
            out.push(DataFile { path, format });
        }
    }
    Ok(())
}

fn expand_glob(pattern: &Path) -> Result<Vec<DataFile>> {
    let text = pattern.to_str().ok_or_else(|| {
        Error::InvalidArgument(format!("glob pattern is not UTF-8: {}", pattern.display()))
    })?;
    let paths = glob::glob(text)
        .map_err(|e| Error::InvalidArgument(format!("bad glob pattern {text:?}: {e}")))?;
    let mut files = Vec::new();
    for entry in paths {
        let path = entry.map_err(|e| Error::io(e.path(), std::io::Error::other(e.to_string())))?;
        if path.is_file() && !is_skipped_name(&path) {
            if let Some(format) = Format::detect(&path)? {
                files.push(DataFile { path, format });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn directories_are_walked_recursively_in_sorted_order_skipping_noise() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(&root.join("b/part-1.parquet"), b"PAR1....");
        touch(&root.join("a.arrow"), b"ARROW1..");
        touch(&root.join("b/part-0.parquet"), b"PAR1....");
        touch(&root.join("c.csv"), b"x\n1\n");
        touch(&root.join("_SUCCESS"), b"");
        touch(&root.join(".hidden.arrow"), b"ARROW1..");
        touch(&root.join("README.txt"), b"hello");
        let found = discover(root).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|f| f.path.strip_prefix(root).unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            ["a.arrow", "b/part-0.parquet", "b/part-1.parquet", "c.csv"].map(PathBuf::from)
        );
        assert_eq!(found[1].format, Format::Parquet);
        assert_eq!(found[3].format, Format::Csv);
    }

    #[test]
    fn globs_expand_sorted_and_empty_results_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(&root.join("x2.arrow"), b"ARROW1..");
        touch(&root.join("x1.arrow"), b"ARROW1..");
        touch(&root.join("y.arrow"), b"ARROW1..");
        let found = discover(&root.join("x*.arrow")).unwrap();
        assert_eq!(found.len(), 2);
        assert!(found[0].path.ends_with("x1.arrow"));
        assert!(matches!(
            discover(&root.join("z*.arrow")),
            Err(Error::NotFound { .. })
        ));
        let empty = root.join("empty");
        std::fs::create_dir(&empty).unwrap();
        let err = discover(&empty).unwrap_err();
        assert!(err.to_string().contains("no data files"), "{err}");
    }

    #[test]
    fn a_single_file_of_unknown_format_is_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes.txt");
        touch(&file, b"hello");
        assert!(matches!(discover(&file), Err(Error::Format { .. })));
        assert!(matches!(
            discover(&dir.path().join("missing.arrow")),
            Err(Error::NotFound { .. })
        ));
    }
}
