//! From the path a user gives (a file, a directory of shards, or a glob) to the ordered list of
//! data files and their formats.
//!
//! Only regular files are opened (format detection reads their first bytes): a FIFO, socket or
//! device given as the path is refused, and one met in a directory or matched by a glob is
//! skipped, with a note saying so. Walks follow symbolic links (shards are often links into a
//! shared store) but never into a directory that contains them (a link back to an ancestor is
//! skipped, with a note), and are bounded: [`MAX_DEPTH`] levels, [`MAX_ENTRIES`] entries.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use glob::{MatchOptions, Pattern};

use super::registry::Format;
use crate::error::{Error, Result};
use crate::runtime::io::file::special_kind;

/// How many directory levels a walk may descend below the path it starts from.
pub const MAX_DEPTH: usize = 64;

/// How many directory entries one walk may look at (about four million): a bound on the time a
/// walk takes, whatever links the tree holds.
pub const MAX_ENTRIES: usize = 1 << 22;

/// Notes about skipped paths kept in full; the rest are counted.
const MAX_NOTES: usize = 8;

/// A data file found under the user's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// Where it is.
    pub path: PathBuf,
    /// What it holds.
    pub format: Format,
}

/// What a walk found: the data files, in order, and the paths it skipped with the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// The data files, sorted by path.
    pub files: Vec<DataFile>,
    /// "skipped <path>: <why>", in the order met: special files, links back to an ancestor.
    pub skipped: Vec<String>,
}

impl Discovery {
    /// The skip notes to show a user: the first few in full, then how many more there were.
    pub fn summary(&self) -> Vec<String> {
        let mut notes: Vec<String> = self.skipped.iter().take(MAX_NOTES).cloned().collect();
        if self.skipped.len() > MAX_NOTES {
            notes.push(format!(
                "skipped {} more paths",
                self.skipped.len() - MAX_NOTES
            ));
        }
        notes
    }
}

/// Lists the data files `path` names, in a stable order.
///
/// * A file is itself, whatever its extension, if its content or extension names a format. A
///   path that is not a regular file (a FIFO, a socket, a device) is an
///   [`Error::InvalidArgument`] saying "not a regular file"; it is never opened.
/// * A directory is searched recursively; files are sorted by path; hidden files and those
///   starting with `_` (`_SUCCESS`, `_metadata`) are skipped, as are files of no known format
///   and special files.
/// * A path with glob characters (`*`, `?`, `[`) that does not exist as such is expanded, sorted,
///   as the `glob` crate does: `**` matches any number of directories (a trailing `**` matches
///   directories only, so no data file).
///
/// Walks deeper than [`MAX_DEPTH`] or longer than [`MAX_ENTRIES`] are an
/// [`Error::InvalidArgument`]. No file found is [`Error::NotFound`].
pub fn discover(path: &Path) -> Result<Vec<DataFile>> {
    Ok(discover_all(path)?.files)
}

/// [`discover`], with the paths it skipped and why.
pub fn discover_all(path: &Path) -> Result<Discovery> {
    discover_with(&local_path(path)?, Limits::default())
}

/// The data files of several paths (each a file, a directory or a glob, as in [`discover`], or
/// an object-store URL, as in [`discover_remote`], read through `io`'s storage options; local
/// and remote paths may be mixed), in the order the paths are given (each path's own files
/// sorted). A file named twice is an [`Error::InvalidArgument`]; an empty list is
/// [`Error::NotFound`].
pub fn discover_list(paths: &[PathBuf], io: &crate::runtime::io::IoContext) -> Result<Discovery> {
    let mut all = Discovery::default();
    for path in paths {
        let found = if crate::runtime::io::remote::is_remote(path) {
            discover_remote(path, io)?
        } else {
            discover_all(path)?
        };
        for file in found.files {
            if all.files.iter().any(|f| f.path == file.path) {
                return Err(Error::InvalidArgument(format!(
                    "{}: the file is in the list of dataset paths twice",
                    file.path.display()
                )));
            }
            all.files.push(file);
        }
        all.skipped.extend(found.skipped);
    }
    if all.files.is_empty() {
        return Err(Error::not_found(
            Path::new(""),
            "no data files found (an empty list of paths)",
        ));
    }
    Ok(all)
}

/// The local path a user's path names: `~` and `~/...` expanded to `$HOME`, a `file://` URL
/// made a path. Any other URL scheme (`s3://`, `hdfs://`, ...) is an [`Error::Unsupported`]
/// that names it: this build reads local files only.
pub fn local_path(path: &Path) -> Result<PathBuf> {
    let bytes = path.as_os_str().as_encoded_bytes();
    if let Some(scheme) = url_scheme(bytes) {
        if scheme.eq_ignore_ascii_case("file") {
            let rest = &path.to_string_lossy()[scheme.len() + 3..];
            // `file:///data/x` and `file://localhost/data/x` name /data/x.
            let local = rest.strip_prefix("localhost").unwrap_or(rest);
            if !local.starts_with('/') {
                return Err(Error::InvalidArgument(format!(
                    "{}: a file:// URL names an absolute path on this host (file:///data/...)",
                    path.display()
                )));
            }
            return Ok(PathBuf::from(local));
        }
        return Err(Error::Unsupported(format!(
            "{}: the URL scheme {scheme:?} is not a local path (local paths and file:// URLs \
             are; object-store URLs are read through the remote readers)",
            path.display()
        )));
    }
    if bytes == b"~" || bytes.starts_with(b"~/") {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{}: cannot expand `~`: HOME is not set",
                    path.display()
                ))
            })?;
        let mut expanded = PathBuf::from(home);
        if let Ok(rest) = path.strip_prefix("~") {
            expanded.push(rest);
        }
        return Ok(expanded);
    }
    Ok(path.to_path_buf())
}

/// The scheme of a URL (`s3` of `s3://bucket/x`): letters, digits, `+`, `-`, `.` starting with
/// a letter, before `://`. `None` for anything else (a Windows-style `C:` is not a URL).
fn url_scheme(bytes: &[u8]) -> Option<&str> {
    let end = bytes.windows(3).position(|w| w == b"://")?;
    let scheme = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (valid && scheme.len() > 1).then_some(scheme)
}

/// How far a walk may go.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_depth: usize,
    max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: MAX_DEPTH,
            max_entries: MAX_ENTRIES,
        }
    }
}

fn discover_with(path: &Path, limits: Limits) -> Result<Discovery> {
    let mut discovery = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            let mut walk = Walk::new(path, limits, None);
            walk.dir(path, &meta, 0, &[])?;
            walk.finish()
        }
        Ok(meta) => {
            if let Some(kind) = special_kind(&meta) {
                return Err(Error::InvalidArgument(format!(
                    "{}: not a regular file ({kind}); a dataset is a regular file, a directory \
                     or a glob",
                    path.display()
                )));
            }
            let format = Format::detect(path)?.ok_or_else(|| {
                let ext = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.find('.').map(|dot| n[dot..].to_owned()));
                let named = match ext {
                    Some(ext) => format!("files ending in {ext:?} are not a format Zenith reads"),
                    None => "a file without an extension, and its content names no format".into(),
                };
                Error::format(
                    path,
                    format!(
                        "not a recognised dataset file: {named} (expected Arrow IPC, Parquet, \
                         CSV/TSV or JSON lines, the last two also .gz/.zst, or WebDataset .tar)"
                    ),
                )
            })?;
            Discovery {
                files: vec![DataFile {
                    path: path.to_path_buf(),
                    format,
                }],
                skipped: Vec::new(),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_glob(path) => {
            expand_glob(path, limits)?
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    discovery.files.sort_by(|a, b| a.path.cmp(&b.path));
    if discovery.files.is_empty() {
        return Err(Error::not_found(path, "no data files found"));
    }
    Ok(discovery)
}

/// [`discover_all`] for a URL (`s3://bucket/prefix/`, `s3://bucket/prefix/*.parquet`,
/// `https://host/file.parquet`), read through `io`'s storage options.
///
/// * A key with glob characters lists the prefix before the first of them and keeps the keys
///   the pattern matches (`*` stays within one level, `**` spans levels).
/// * A key ending in `/` (or none: the whole bucket) lists the prefix recursively.
/// * Another key is one object when its extension names a format; else the prefix it names is
///   listed, and when that holds nothing, the object itself is read (its first bytes say the
///   format). On `http(s)://` such a key is read as one object, not listed.
///
/// `http(s)://` listings (globs, keys ending in `/`) are WebDAV `PROPFIND`s: a plain web server
/// that does not answer them is an [`Error::Unsupported`] saying so.
///
/// Objects whose name starts with `.` or `_` are skipped, as are those of no known format (by
/// extension) in a listing. Formats are known by extension in listings (a GET per object would
/// cost more than the walk); a single object is read for its magic bytes when its extension
/// does not tell.
pub fn discover_remote(path: &Path, io: &crate::runtime::io::IoContext) -> Result<Discovery> {
    use crate::runtime::io::remote;
    remote::check_scheme(path)?;
    #[cfg(feature = "remote")]
    {
        let text = path.to_str().ok_or_else(|| {
            Error::InvalidArgument(format!("{}: a URL must be UTF-8", path.display()))
        })?;
        let (scheme_host, key) = match text.split_once("://") {
            Some((scheme, rest)) => match rest.split_once('/') {
                Some((host, key)) => (format!("{scheme}://{host}"), key.to_string()),
                None => (text.to_string(), String::new()),
            },
            None => (text.to_string(), String::new()),
        };
        let http = text.starts_with("http://") || text.starts_with("https://");
        let mut files = Vec::new();
        let listed_kept = |objects: Vec<remote::RemoteObject>, pattern: Option<&Pattern>| {
            let options = MatchOptions {
                require_literal_separator: true,
                ..MatchOptions::new()
            };
            objects
                .into_iter()
                .filter(|o| !is_skipped_name(Path::new(&o.url)))
                .filter(|o| pattern.is_none_or(|p| p.matches_with(&o.relative, options)))
                .filter_map(|o| {
                    let path = PathBuf::from(&o.url);
                    Format::from_extension(&path).map(|format| DataFile { path, format })
                })
                .collect::<Vec<_>>()
        };
        if is_glob(Path::new(&key)) {
            let first = key.find(['*', '?', '[']).expect("a glob character");
            let dir = key[..first].rfind('/').map_or("", |at| &key[..at]);
            let rest = if dir.is_empty() {
                &key[..]
            } else {
                &key[dir.len() + 1..]
            };
            let pattern = Pattern::new(rest)
                .map_err(|e| Error::InvalidArgument(format!("bad glob pattern {text:?}: {e}")))?;
            let objects = remote::list_objects(
                Path::new(&format!("{scheme_host}/{dir}")),
                &io.storage,
                MAX_ENTRIES,
            )?;
            files = listed_kept(objects, Some(&pattern));
        } else if key.is_empty() || key.ends_with('/') {
            let objects = remote::list_objects(path, &io.storage, MAX_ENTRIES)?;
            files = listed_kept(objects, None);
        } else if let Some(format) = Format::from_extension(path) {
            files.push(DataFile {
                path: path.to_path_buf(),
                format,
            });
        } else {
            if !http {
                let objects = remote::list_objects(path, &io.storage, MAX_ENTRIES)?;
                files = listed_kept(objects, None);
            }
            if files.is_empty() {
                let reader = io.open(path).map_err(|e| Error::io(path, e))?;
                let head = reader
                    .read_range(0..reader.len().min(8))
                    .map_err(|e| Error::io(path, e))?;
                let format = Format::from_magic(&head).ok_or_else(|| {
                    Error::format(
                        path,
                        "not a recognised dataset file (expected Arrow IPC, Parquet or a .csv \
                         file)",
                    )
                })?;
                files.push(DataFile {
                    path: path.to_path_buf(),
                    format,
                });
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        if files.is_empty() {
            return Err(Error::not_found(path, "no data files found"));
        }
        Ok(Discovery {
            files,
            skipped: Vec::new(),
        })
    }
    #[cfg(not(feature = "remote"))]
    {
        let _ = io;
        unreachable!("check_scheme refuses URLs without the remote feature")
    }
}

fn is_glob(path: &Path) -> bool {
    path.to_string_lossy().contains(['*', '?', '['])
}

fn is_skipped_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') || n.starts_with('_'))
}

/// One component of a glob pattern below its literal prefix.
#[derive(Debug)]
enum Part {
    /// `**`: any number of directories (none included).
    AnyDirs,
    /// A pattern one name must match.
    Name(Pattern),
}

/// The glob's parts below its literal prefix, as a small automaton: a state is the index of the
/// next part to match; `parts.len()` means the whole pattern matched.
#[derive(Debug)]
struct Glob {
    parts: Vec<Part>,
}

impl Glob {
    /// The states after `**` parts matched nothing.
    fn close(&self, mut states: Vec<usize>) -> Vec<usize> {
        let mut i = 0;
        while i < states.len() {
            let state = states[i];
            if matches!(self.parts.get(state), Some(Part::AnyDirs))
                && !states.contains(&(state + 1))
            {
                states.push(state + 1);
            }
            i += 1;
        }
        states.sort_unstable();
        states
    }

    fn start(&self) -> Vec<usize> {
        self.close(vec![0])
    }

    /// The states after one more path component, `name`.
    fn step(&self, states: &[usize], name: &str) -> Vec<usize> {
        let options = MatchOptions::new();
        let mut next = Vec::new();
        for &state in states {
            match self.parts.get(state) {
                Some(Part::AnyDirs) => next.push(state),
                Some(Part::Name(pattern)) if pattern.matches_with(name, options) => {
                    next.push(state + 1)
                }
                _ => {}
            }
        }
        next.dedup();
        self.close(next)
    }

    /// Whether a file whose path led to `states` matches. As with the glob crate (which
    /// expanded patterns before), a trailing `**` matches directories only, never a file.
    fn accepts_file(&self, states: &[usize]) -> bool {
        !matches!(self.parts.last(), Some(Part::AnyDirs)) && states.contains(&self.parts.len())
    }

    /// Whether something below a directory in `states` could still match.
    fn may_descend(&self, states: &[usize]) -> bool {
        states.iter().any(|&s| s < self.parts.len())
    }
}

/// A bounded walk that follows links but never into a directory that contains it.
struct Walk<'a> {
    root: &'a Path,
    limits: Limits,
    glob: Option<Glob>,
    entries: usize,
    /// `(device, inode)` and path of each directory on the way down to the current one.
    ancestors: Vec<((u64, u64), PathBuf)>,
    found: Discovery,
}

impl<'a> Walk<'a> {
    fn new(root: &'a Path, limits: Limits, glob: Option<Glob>) -> Self {
        Walk {
            root,
            limits,
            glob,
            entries: 0,
            ancestors: Vec::new(),
            found: Discovery::default(),
        }
    }

    fn finish(self) -> Discovery {
        self.found
    }

    fn skip(&mut self, path: &Path, why: impl std::fmt::Display) {
        self.found
            .skipped
            .push(format!("skipped {}: {why}", path.display()));
    }

    /// Walks `dir` (whose metadata is `meta`, `depth` levels below the root; `states` are the
    /// glob's states after its path, when walking for a glob).
    fn dir(
        &mut self,
        dir: &Path,
        meta: &std::fs::Metadata,
        depth: usize,
        states: &[usize],
    ) -> Result<()> {
        if depth > self.limits.max_depth {
            return Err(Error::InvalidArgument(format!(
                "{}: the directory tree is more than {} levels deep (at {}); give a narrower path \
                 or glob",
                self.root.display(),
                self.limits.max_depth,
                dir.display()
            )));
        }
        self.ancestors
            .push(((meta.dev(), meta.ino()), dir.to_path_buf()));
        // An empty path (a relative glob without a literal prefix) is the current directory.
        let listed = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let entries = std::fs::read_dir(listed).map_err(|e| Error::io(listed, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(listed, e))?;
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                return Err(Error::InvalidArgument(format!(
                    "{}: more than {} directory entries to look at; give a narrower path or glob",
                    self.root.display(),
                    self.limits.max_entries
                )));
            }
            let path = dir.join(entry.file_name());
            // What the glob says about this name (nothing can match below a dead end: no stat).
            let next = match &self.glob {
                None if is_skipped_name(&path) => continue,
                None => Vec::new(),
                Some(glob) => {
                    let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                        continue;
                    };
                    let next = glob.step(states, &name);
                    if next.is_empty() {
                        continue;
                    }
                    next
                }
            };
            // Follow symlinks: shards are often links into a shared store.
            let meta = match std::fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                    self.skip(&path, "a symbolic link that loops");
                    continue;
                }
                Err(e) => return Err(Error::io(&path, e)),
            };
            let wanted_file = self
                .glob
                .as_ref()
                .is_none_or(|g| g.accepts_file(&next) && !is_skipped_name(&path));
            if meta.is_dir() {
                if self.glob.as_ref().is_some_and(|g| !g.may_descend(&next)) {
                    continue;
                }
                let id = (meta.dev(), meta.ino());
                if let Some((_, ancestor)) = self.ancestors.iter().find(|(a, _)| *a == id) {
                    let why = format!("a directory that loops back to {}", ancestor.display());
                    self.skip(&path, why);
                    continue;
                }
                self.dir(&path, &meta, depth + 1, &next)?;
            } else if !wanted_file {
                continue;
            } else if let Some(kind) = special_kind(&meta) {
                self.skip(&path, format!("not a regular file ({kind})"));
            } else if let Some(format) = Format::detect(&path)? {
                self.found.files.push(DataFile { path, format });
            }
        }
        self.ancestors.pop();
        Ok(())
    }
}

/// Expands a glob: the literal directories it starts with, then a bounded walk below them that
/// matches each further component against the pattern's (`**`: any number of directories).
fn expand_glob(pattern: &Path, limits: Limits) -> Result<Discovery> {
    let text = pattern.to_str().ok_or_else(|| {
        Error::InvalidArgument(format!("glob pattern is not UTF-8: {}", pattern.display()))
    })?;
    // Checks the whole pattern as the glob crate would (e.g. `a**` is an error).
    Pattern::new(text)
        .map_err(|e| Error::InvalidArgument(format!("bad glob pattern {text:?}: {e}")))?;
    let mut prefix = PathBuf::new();
    let mut parts = Vec::new();
    for component in pattern.components() {
        let literal = parts.is_empty() && !is_glob(Path::new(component.as_os_str()));
        match component {
            _ if literal => prefix.push(component),
            Component::Normal(name) if name == "**" => parts.push(Part::AnyDirs),
            _ => {
                let name = component.as_os_str().to_str().unwrap_or_default();
                let part = Pattern::new(name).map_err(|e| {
                    Error::InvalidArgument(format!("bad glob pattern {text:?}: {e}"))
                })?;
                parts.push(Part::Name(part));
            }
        }
    }
    let glob = Glob { parts };
    let listed = if prefix.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &prefix
    };
    match std::fs::metadata(listed) {
        Ok(meta) if meta.is_dir() => {
            let states = glob.start();
            let mut walk = Walk::new(pattern, limits, Some(glob));
            walk.dir(&prefix, &meta, 0, &states)?;
            Ok(walk.finish())
        }
        // Nothing to match below a missing directory or a file.
        _ => Ok(Discovery::default()),
    }
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
    fn globs_match_what_the_glob_crate_matches() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in [
            "x.arrow",
            "y.arrow",
            ".h.arrow",
            "_skip.arrow",
            "a/p-0.parquet",
            "a/p-1.parquet",
            "a/b/p-2.parquet",
            "a/b/c/d.csv",
            "b/p-3.parquet",
            "b/b/e.csv",
            ".hidden/p-4.parquet",
        ] {
            touch(
                &root.join(name),
                if name.ends_with(".csv") {
                    b"x\n1\n"
                } else {
                    b"PAR1...."
                },
            );
        }
        for pattern in [
            "*.arrow",
            "*/*.parquet",
            "**/*.parquet",
            "a/**",
            "**",
            "**/p-?.parquet",
            "[ab]/*",
            "**/b/**/*.csv",
            "a/**/b/*",
            "*/b",
            "nothing/**",
        ] {
            let full = format!("{}/{pattern}", root.display());
            let mut expected: Vec<PathBuf> = glob::glob(&full)
                .unwrap()
                .map(|p| p.unwrap())
                .filter(|p| p.is_file() && !is_skipped_name(p))
                .collect();
            expected.sort();
            // The crate yields a path once per way of matching it (b/b/e.csv twice for
            // `**/b/**/*.csv`); a dataset lists each file once.
            expected.dedup();
            let found: Vec<PathBuf> = match discover(Path::new(&full)) {
                Ok(files) => files.into_iter().map(|f| f.path).collect(),
                Err(Error::NotFound { .. }) => Vec::new(),
                Err(e) => panic!("{pattern}: {e}"),
            };
            assert_eq!(found, expected, "{pattern}");
        }
    }

    #[test]
    fn walks_are_bounded_by_the_entries_they_look_at() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..10 {
            touch(&dir.path().join(format!("d/{i}.arrow")), b"ARROW1..");
        }
        let limits = Limits {
            max_depth: MAX_DEPTH,
            max_entries: 5,
        };
        for path in [dir.path().join("d"), dir.path().join("d/*.arrow")] {
            let err = discover_with(&path, limits).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
            assert!(
                err.to_string().contains("more than 5 directory entries"),
                "{err}"
            );
        }
        let limits = Limits {
            max_depth: MAX_DEPTH,
            max_entries: 10,
        };
        assert_eq!(
            discover_with(&dir.path().join("d"), limits)
                .unwrap()
                .files
                .len(),
            10
        );
    }

    #[test]
    fn home_and_file_urls_are_local_paths_and_other_schemes_are_named() {
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            let home = PathBuf::from(home);
            assert_eq!(local_path(Path::new("~")).unwrap(), home);
            assert_eq!(
                local_path(Path::new("~/d/x.csv")).unwrap(),
                home.join("d/x.csv")
            );
        }
        // `~user` and a `~` inside a path are names, as in a shell.
        assert_eq!(
            local_path(Path::new("~bob/x")).unwrap(),
            Path::new("~bob/x")
        );
        assert_eq!(local_path(Path::new("a/~/x")).unwrap(), Path::new("a/~/x"));
        assert_eq!(
            local_path(Path::new("file:///data/x.csv")).unwrap(),
            Path::new("/data/x.csv")
        );
        assert!(local_path(Path::new("file://other-host/x")).is_err());
        let err = local_path(Path::new("gs://bucket/x")).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("\"gs\""), "{err}");
        // Not URLs: no scheme, or `://` later in a relative path.
        assert_eq!(
            local_path(Path::new("./a://b")).unwrap(),
            Path::new("./a://b")
        );
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
