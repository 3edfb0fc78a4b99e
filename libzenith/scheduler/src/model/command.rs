//! A job's command line, carried as data and validated; the core never executes it.

use super::limits::*;
use super::text::{check_abs_path, check_env_name, check_len, check_text};
use crate::error::{Error, Problem, Result};

/// What an executor runs for each gang member: a program, its arguments, its environment and its
/// working directory. The scheduler validates and journals it, and hands it back in job views; it
/// never runs it.
///
/// Rules: the program is either a bare name (no `/`, looked up on the executor's `PATH`) or an
/// absolute normalised path (starts with `/`, no empty, `.` or `..` components); the working
/// directory, when given, is an absolute normalised path; no field contains NUL; arguments and
/// values are at most [`MAX_ARG_LEN`] bytes; environment names match `[A-Za-z_][A-Za-z0-9_]*`
/// and appear once; the whole command is at most [`MAX_COMMAND_BYTES`]. Text is UTF-8 (a Rust
/// `String`; the C ABI checks bytes with [`crate::model::text::utf8`]-style rules before building
/// one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command {
    /// The program: a bare name or an absolute path.
    pub program: String,
    /// The arguments, without the program name.
    pub args: Vec<String>,
    /// Environment variables, in order; names are unique.
    pub env: Vec<(String, String)>,
    /// The working directory (absolute), or `None` for the executor's default.
    pub workdir: Option<String>,
}

impl Command {
    /// A command running `program` with no arguments.
    pub fn new(program: impl Into<String>) -> Self {
        Command {
            program: program.into(),
            ..Command::default()
        }
    }

    /// Appends an argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Appends an environment variable.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Sets the working directory.
    pub fn workdir(mut self, dir: impl Into<String>) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// Checks every rule above; the error names the first field that breaks one.
    pub fn validate(&self) -> Result<()> {
        let f = "command.program";
        if self.program.contains('/') {
            check_abs_path(f, &self.program, MAX_PATH_LEN)?;
        } else {
            check_text(f, &self.program, MAX_NAME_LEN)?;
            if self.program == "." || self.program == ".." {
                return Err(Error::invalid(f, Problem::BadPath("`.` or `..`")));
            }
        }
        let mut total = self.program.len();
        if self.args.len() > MAX_ARGS {
            return Err(Error::invalid(
                "command.args",
                Problem::TooLong {
                    max: MAX_ARGS,
                    len: self.args.len(),
                },
            ));
        }
        for (i, a) in self.args.iter().enumerate() {
            let field = format!("command.args[{i}]");
            check_len(&field, a, MAX_ARG_LEN)?;
            if a.contains('\0') {
                return Err(Error::invalid(field, Problem::ContainsNul));
            }
            total += a.len() + 1;
        }
        if self.env.len() > MAX_ENV {
            return Err(Error::invalid(
                "command.env",
                Problem::TooLong {
                    max: MAX_ENV,
                    len: self.env.len(),
                },
            ));
        }
        for (i, (name, value)) in self.env.iter().enumerate() {
            check_env_name(&format!("command.env[{i}].name"), name, MAX_ENV_NAME_LEN)?;
            let field = format!("command.env[{i}].value");
            check_len(&field, value, MAX_ARG_LEN)?;
            if value.contains('\0') {
                return Err(Error::invalid(field, Problem::ContainsNul));
            }
            if self.env[..i].iter().any(|(n, _)| n == name) {
                return Err(Error::invalid(
                    "command.env",
                    Problem::Duplicate(format!("the variable {name}")),
                ));
            }
            total += name.len() + value.len() + 2;
        }
        if let Some(dir) = &self.workdir {
            check_abs_path("command.workdir", dir, MAX_PATH_LEN)?;
            total += dir.len();
        }
        if total > MAX_COMMAND_BYTES {
            return Err(Error::invalid(
                "command",
                Problem::TooLong {
                    max: MAX_COMMAND_BYTES,
                    len: total,
                },
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(r: Result<()>) -> String {
        match r {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn accepts_reasonable_commands() {
        Command::new("python3")
            .arg("train.py")
            .arg("--lr=0.1")
            .arg("")
            .env("CUDA_LAUNCH_BLOCKING", "1")
            .env("_X", "ünïcode value with spaces")
            .workdir("/home/user/project")
            .validate()
            .unwrap();
        Command::new("/usr/bin/torchrun").validate().unwrap();
    }

    #[test]
    fn names_the_broken_field() {
        assert_eq!(field_of(Command::new("").validate()), "command.program");
        assert_eq!(
            field_of(Command::new("bin/x").validate()),
            "command.program"
        );
        assert_eq!(
            field_of(Command::new("/a/../b").validate()),
            "command.program"
        );
        assert_eq!(field_of(Command::new("..").validate()), "command.program");
        assert_eq!(
            field_of(Command::new("x").arg("ok").arg("a\0b").validate()),
            "command.args[1]"
        );
        assert_eq!(
            field_of(Command::new("x").env("1BAD", "v").validate()),
            "command.env[0].name"
        );
        assert_eq!(
            field_of(Command::new("x").env("A", "v\0").validate()),
            "command.env[0].value"
        );
        assert_eq!(
            field_of(Command::new("x").env("A", "1").env("A", "2").validate()),
            "command.env"
        );
        assert_eq!(
            field_of(Command::new("x").workdir("relative").validate()),
            "command.workdir"
        );
        assert_eq!(
            field_of(
                Command::new("x")
                    .arg("y".repeat(MAX_ARG_LEN + 1))
                    .validate()
            ),
            "command.args[0]"
        );
        let mut big = Command::new("x");
        for _ in 0..20 {
            big = big.arg("z".repeat(MAX_ARG_LEN));
        }
        assert_eq!(field_of(big.validate()), "command");
    }
}
