//! The arguments after the subcommand, and the small parsers the subcommands' options share.

use std::ffi::OsString;

use crate::protocol::Failure;

/// The arguments after the subcommand, with helpers for `--flag VALUE` parsing.
pub struct Args {
    args: std::vec::IntoIter<OsString>,
}

impl Args {
    pub fn new(args: Vec<OsString>) -> Self {
        Args { args: args.into_iter() }
    }

    /// The next argument as UTF-8 (every testkit argument is ASCII, except a COMMAND's).
    pub fn next_str(&mut self) -> Result<Option<String>, Failure> {
        self.args
            .next()
            .map(|a| {
                a.into_string().map_err(|a| Failure::usage(format!("argument {a:?} is not UTF-8")))
            })
            .transpose()
    }

    /// The value of `flag`, which must follow.
    pub fn value(&mut self, flag: &str) -> Result<String, Failure> {
        self.next_str()?.ok_or_else(|| Failure::usage(format!("{flag} needs a value")))
    }

    /// Everything left, untouched (a COMMAND after `--`).
    pub fn rest(&mut self) -> Vec<OsString> {
        self.args.by_ref().collect()
    }

    /// The arguments of a unit test, from literals.
    #[cfg(test)]
    pub fn of(list: &[&str]) -> Self {
        Args::new(list.iter().map(OsString::from).collect())
    }
}

/// Parses a number argument; `what` names it in the error.
pub fn parse_num<T: std::str::FromStr>(what: &str, text: &str) -> Result<T, Failure> {
    text.parse().map_err(|_| Failure::usage(format!("{what}: not a number: {text:?}")))
}

/// The error of a `--flag` nobody knows.
pub fn unknown(arg: &str) -> Failure {
    Failure::usage(format!("unexpected argument {arg:?}"))
}
