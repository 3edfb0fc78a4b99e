//! Rules for the text fields of specs, for bindings that check bytes before building a spec
//! (the C ABI turns `const char*` into text with [`utf8`]).

use crate::error::{Error, Problem, Result};

/// Checks UTF-8 bytes from outside Rust (the C ABI, the journal) and returns them as text.
pub fn utf8<'a>(field: &str, bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|_| Error::invalid(field, Problem::InvalidUtf8))
}

/// Length in `1..=max` bytes, no NUL.
pub fn check_text(field: &str, s: &str, max: usize) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid(field, Problem::Empty));
    }
    check_len(field, s, max)?;
    if s.contains('\0') {
        return Err(Error::invalid(field, Problem::ContainsNul));
    }
    Ok(())
}

/// Length at most `max` bytes (may be empty).
pub fn check_len(field: &str, s: &str, max: usize) -> Result<()> {
    if s.len() > max {
        return Err(Error::invalid(
            field,
            Problem::TooLong { max, len: s.len() },
        ));
    }
    Ok(())
}

/// A name: `1..=max` bytes of printable characters, no whitespace, no control characters.
/// Node names from Kubernetes (DNS labels), Ray (hex ids) and Slurm all pass.
pub fn check_name(field: &str, s: &str, max: usize) -> Result<()> {
    check_text(field, s, max)?;
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(field, Problem::InvalidChar(c)));
    }
    Ok(())
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn check_env_name(field: &str, s: &str, max: usize) -> Result<()> {
    check_text(field, s, max)?;
    let mut chars = s.chars();
    if let Some(c) = chars.next() {
        if !(c.is_ascii_alphabetic() || c == '_') {
            return Err(Error::invalid(field, Problem::InvalidChar(c)));
        }
    }
    if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
        return Err(Error::invalid(field, Problem::InvalidChar(c)));
    }
    Ok(())
}

/// A number in `min..=max`.
pub fn check_range(field: &str, value: u64, min: u64, max: u64) -> Result<()> {
    if value < min || value > max {
        return Err(Error::invalid(
            field,
            Problem::OutOfRange { min, max, value },
        ));
    }
    Ok(())
}

/// An absolute, normalised path: starts with `/`, no empty, `.` or `..` components, no NUL.
pub fn check_abs_path(field: &str, s: &str, max: usize) -> Result<()> {
    check_text(field, s, max)?;
    if !s.starts_with('/') {
        return Err(Error::invalid(field, Problem::BadPath("not absolute")));
    }
    if s == "/" {
        return Ok(());
    }
    for comp in s[1..].split('/') {
        match comp {
            "" => return Err(Error::invalid(field, Problem::BadPath("empty component"))),
            "." | ".." => {
                return Err(Error::invalid(
                    field,
                    Problem::BadPath("`.` or `..` component"),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_paths_and_env_names() {
        assert!(check_name("n", "node-01.rack_a", 63).is_ok());
        assert!(matches!(
            check_name("n", "", 63),
            Err(Error::Invalid {
                problem: Problem::Empty,
                ..
            })
        ));
        assert!(matches!(
            check_name("n", "a b", 63),
            Err(Error::Invalid {
                problem: Problem::InvalidChar(' '),
                ..
            })
        ));
        assert!(matches!(
            check_name("n", "a\0b", 63),
            Err(Error::Invalid {
                problem: Problem::ContainsNul,
                ..
            })
        ));
        assert!(matches!(
            check_name("n", &"x".repeat(64), 63),
            Err(Error::Invalid {
                problem: Problem::TooLong { max: 63, len: 64 },
                ..
            })
        ));
        assert!(check_env_name("e", "_PATH2", 255).is_ok());
        assert!(check_env_name("e", "2X", 255).is_err());
        assert!(check_env_name("e", "A-B", 255).is_err());
        assert!(check_env_name("e", "É", 255).is_err());
        assert!(check_abs_path("p", "/usr/bin/python3", 4096).is_ok());
        assert!(check_abs_path("p", "/", 4096).is_ok());
        for bad in ["usr/bin", "/usr//bin", "/usr/../etc", "/./x", "/x/"] {
            assert!(check_abs_path("p", bad, 4096).is_err(), "{bad}");
        }
        assert!(utf8("u", b"ok").is_ok());
        assert!(matches!(
            utf8("u", &[0xff, 0xfe]),
            Err(Error::Invalid {
                problem: Problem::InvalidUtf8,
                ..
            })
        ));
        assert!(check_range("r", 5, 1, 4).is_err());
    }
}
