//! Writing results: stdout for tables and JSON, stderr for errors and progress; colour only on a
//! terminal and never with `NO_COLOR`; tables aligned in plain text.

use std::io::{IsTerminal, Write};

use crate::exit::Failure;

/// True when `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Colour on stdout: a terminal, and no `NO_COLOR`.
pub fn color_stdout() -> bool {
    !no_color() && std::io::stdout().is_terminal()
}

/// Colour on stderr: a terminal, and no `NO_COLOR`.
pub fn color_stderr() -> bool {
    !no_color() && std::io::stderr().is_terminal()
}

/// Writes `text` to stdout and flushes it. A reader that went away is [`Failure::BrokenPipe`].
pub fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => Failure::BrokenPipe,
            _ => Failure::Other(format!("writing to stdout: {e}")),
        })
}

/// Writes a JSON document (pretty, with a final newline) to stdout.
pub fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::Other(format!("rendering JSON: {e}")))?;
    text.push('\n');
    print(&text)
}

/// `zenith: error: MESSAGE` on stderr (the prefix red and bold where colour is allowed).
pub fn error(message: &str) {
    let prefix = if color_stderr() {
        "\x1b[1;31merror:\x1b[0m"
    } else {
        "error:"
    };
    let _ = writeln!(std::io::stderr().lock(), "zenith: {prefix} {message}");
}

/// A note on stderr (`zenith: MESSAGE`).
pub fn note(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "zenith: {message}");
}

/// `text` in bold when `color`.
pub fn bold(text: &str, color: bool) -> String {
    if color {
        format!("\x1b[1m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// A plain-text table: a header row and rows of cells, columns separated by two spaces,
/// numeric-looking columns right-aligned.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
}

impl Table {
    /// A table with these column headers; `right[i]` right-aligns column `i`.
    pub fn new(headers: &[&str], right: &[bool]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            right: right.to_vec(),
        }
    }

    /// Appends a row (missing cells are empty).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as lines of text, each indented by `indent` spaces; the header in bold when
    /// `color`.
    pub fn render(&self, indent: usize, color: bool) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let pad = " ".repeat(indent);
        let line = |cells: &[String]| -> String {
            let mut out = pad.clone();
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                let fill = width - cell.chars().count();
                let last = i + 1 == columns;
                if self.right.get(i).copied().unwrap_or(false) {
                    out.push_str(&" ".repeat(fill));
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    if !last {
                        out.push_str(&" ".repeat(fill));
                    }
                }
                if !last {
                    out.push_str("  ");
                }
            }
            out.truncate(out.trim_end().len());
            out.push('\n');
            out
        };
        let header = line(&self.headers);
        let mut out = if color {
            format!("{pad}{}\n", bold(header[indent..].trim_end(), true))
        } else {
            header
        };
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// `1.5 KiB`, `3.2 GiB`; bytes below 1 KiB as `512 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `12,345,678`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in seconds as `850 µs`, `12.3 ms`, `4.56 s`.
pub fn seconds(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// A rate as `1.23 M`, `456.7 k`, `89`.
pub fn rate(per_second: f64) -> String {
    if per_second >= 1e9 {
        format!("{:.2} G", per_second / 1e9)
    } else if per_second >= 1e6 {
        format!("{:.2} M", per_second / 1e6)
    } else if per_second >= 1e3 {
        format!("{:.1} k", per_second / 1e3)
    } else {
        format!("{per_second:.0}")
    }
}

/// Parses a byte size: `1048576`, `512K`, `64MiB`, `4G`, `1.5GB` (K/M/G/T are powers of 1024,
/// with or without `B`/`iB`).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (try 512M, 4G or a number of bytes)"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let scale: u64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (K, M, G or T)")),
    };
    let bytes = value * scale as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("{text:?} must be at least 1 byte"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_counts_and_durations_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 << 30), "5.0 GiB");
        assert_eq!(count(0), "0");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(12_345_678), "12,345,678");
        assert_eq!(seconds(0.000_25), "250 µs");
        assert_eq!(seconds(0.0123), "12.3 ms");
        assert_eq!(seconds(4.561), "4.56 s");
        assert_eq!(rate(1_234_567.0), "1.23 M");
    }

    #[test]
    fn byte_sizes_parse_with_binary_units() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("512K"), Ok(512 << 10));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("4g"), Ok(4 << 30));
        assert_eq!(parse_bytes("1.5GB"), Ok(3 << 29));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("").is_err());
    }

    #[test]
    fn tables_align_columns_and_trim_trailing_space() {
        let mut t = Table::new(&["name", "rows"], &[false, true]);
        t.row(vec!["a".into(), "10".into()]);
        t.row(vec!["longer".into(), "1,000".into()]);
        assert_eq!(
            t.render(2, false),
            "  name     rows\n  a          10\n  longer  1,000\n"
        );
    }
}
