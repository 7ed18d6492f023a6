//! Write-buffer water marks (asyncio's `_FlowControlMixin`).
//!
//! Invariants:
//! 1. `low <= high` always.
//! 2. Defaults are asyncio's: high 64 KiB, low high/4; given only `high`,
//!    low is high/4; given only `low`, high is 4 × low.

use std::fmt;

use crate::constants::DEFAULT_HIGH_WATER;

/// High- and low-water marks of a transport's write buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteLimits {
    /// `pause_writing` is called when the buffer grows past this.
    pub high: usize,
    /// `resume_writing` is called when it drains to this or below.
    pub low: usize,
}

impl Default for WriteLimits {
    fn default() -> Self {
        WriteLimits {
            high: DEFAULT_HIGH_WATER,
            low: DEFAULT_HIGH_WATER / 4,
        }
    }
}

/// `set_write_buffer_limits` was given `high < low`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidWriteLimits {
    /// The high mark given (or derived).
    pub high: usize,
    /// The low mark given (or derived).
    pub low: usize,
}

impl fmt::Display for InvalidWriteLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "high ({}) must be >= low ({}) must be >= 0",
            self.high, self.low
        )
    }
}

impl std::error::Error for InvalidWriteLimits {}

impl WriteLimits {
    /// asyncio's `_set_write_buffer_limits` rules.
    ///
    /// # Errors
    ///
    /// [`InvalidWriteLimits`] when the resulting `high < low`.
    pub fn new(high: Option<usize>, low: Option<usize>) -> Result<Self, InvalidWriteLimits> {
        let high = match (high, low) {
            (Some(h), _) => h,
            (None, Some(l)) => l.saturating_mul(4),
            (None, None) => DEFAULT_HIGH_WATER,
        };
        let low = low.unwrap_or(high / 4);
        if high < low {
            return Err(InvalidWriteLimits { high, low });
        }
        Ok(WriteLimits { high, low })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asyncio_rules() {
        assert_eq!(
            WriteLimits::new(None, None).unwrap(),
            WriteLimits {
                high: 65536,
                low: 16384
            }
        );
        assert_eq!(
            WriteLimits::new(Some(1000), None).unwrap(),
            WriteLimits {
                high: 1000,
                low: 250
            }
        );
        assert_eq!(
            WriteLimits::new(None, Some(10)).unwrap(),
            WriteLimits { high: 40, low: 10 }
        );
        assert_eq!(
            WriteLimits::new(Some(0), Some(0)).unwrap(),
            WriteLimits { high: 0, low: 0 }
        );
        let err = WriteLimits::new(Some(1), Some(2)).unwrap_err();
        assert_eq!(err, InvalidWriteLimits { high: 1, low: 2 });
        assert!(err.to_string().contains("must be >="));
    }
}
