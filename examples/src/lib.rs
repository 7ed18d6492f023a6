//! Examples live in this folder, one `[[example]]` per file. This library
//! holds what several of them share: reading command-line flags, and the
//! flow-control methods of their echoing protocols; and what the HTTP
//! example needs that is not about the loop (the `Date` header's value).
//!
//! A flag's value that does not parse is an error naming the flag, never a
//! silent fallback to the default (a mistyped `--port` would otherwise
//! start a server on a port nobody asked for).

use std::fmt::Display;
use std::str::FromStr;

mod http_date;

pub use http_date::{DateCache, http_date};

/// The value after the flag `name` in `args`, if the flag is given.
pub fn arg(args: &[String], name: &str) -> Option<String> {
    args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone())
}

/// The value after `name` parsed as `T`, if the flag is given.
///
/// # Errors
///
/// A value that does not parse (or a flag given last, with no value).
pub fn optional_flag<T>(args: &[String], name: &str) -> Result<Option<T>, String>
where
    T: FromStr,
    T::Err: Display,
{
    if args.last().is_some_and(|last| last == name) {
        return Err(format!("{name}: a value is missing"));
    }
    match arg(args, name) {
        None => Ok(None),
        Some(value) => value
            .parse()
            .map(Some)
            .map_err(|err| format!("{name} {value:?}: {err}")),
    }
}

/// The value after `name` parsed as `T`, or `default` without the flag.
///
/// # Errors
///
/// As [`optional_flag`].
pub fn flag<T>(args: &[String], name: &str, default: T) -> Result<T, String>
where
    T: FromStr,
    T::Err: Display,
{
    Ok(optional_flag(args, name)?.unwrap_or(default))
}

/// The two `BaseProtocol` methods of asyncio's flow-control pattern, for a
/// protocol that writes what it reads (an echo, a server answering
/// requests): a peer that stops reading (the write buffer past its
/// high-water mark) stops this side reading, so what it would owe cannot
/// pile up without bound. Expands inside `impl BaseProtocol for P` where
/// `P` has a `transport: Option<Transport>` field.
#[macro_export]
macro_rules! pause_reading_while_writing_is_paused {
    () => {
        fn pause_writing(&mut self) {
            if let Some(t) = &self.transport {
                t.pause_reading();
            }
        }

        fn resume_writing(&mut self) {
            if let Some(t) = &self.transport {
                t.resume_reading();
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_parse_default_or_fail_naming_the_flag() {
        let a = args(&["prog", "--port", "8080", "--mode", "streams"]);
        assert_eq!(flag(&a, "--port", 0u16), Ok(8080));
        assert_eq!(flag(&a, "--count", 7usize), Ok(7));
        assert_eq!(arg(&a, "--mode").as_deref(), Some("streams"));
        let bad = args(&["prog", "--port", "99999"]);
        let err = flag(&bad, "--port", 0u16).unwrap_err();
        assert!(err.starts_with("--port \"99999\""), "{err}");
        let missing = args(&["prog", "--port"]);
        assert_eq!(
            optional_flag::<u16>(&missing, "--port"),
            Err("--port: a value is missing".to_string())
        );
    }
}
