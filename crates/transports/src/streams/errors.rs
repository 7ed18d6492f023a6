//! The stream errors (asyncio's `IncompleteReadError` and
//! `LimitOverrunError`).

use std::fmt;

/// EOF came before the expected bytes (asyncio's `IncompleteReadError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncompleteReadError {
    /// The bytes read before EOF.
    pub partial: Vec<u8>,
    /// How many bytes were expected (`None`: up to a separator).
    pub expected: Option<usize>,
}

impl fmt::Display for IncompleteReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expected {
            Some(n) => write!(
                f,
                "{} bytes read on a total of {n} expected bytes",
                self.partial.len()
            ),
            None => write!(
                f,
                "{} bytes read on a total of undefined expected bytes",
                self.partial.len()
            ),
        }
    }
}

impl std::error::Error for IncompleteReadError {}

/// A separator was not found within the reader's limit (asyncio's
/// `LimitOverrunError`). The data stays in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitOverrunError {
    /// What happened.
    pub message: String,
    /// How many bytes the search went through.
    pub consumed: usize,
}

impl fmt::Display for LimitOverrunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LimitOverrunError {}
