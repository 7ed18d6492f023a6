//! [`Lines`] and [`Chunks`]: a [`StreamReader`] read in a `while let`
//! loop (asyncio's `async for line in reader`, and the same by chunks).
//!
//! Invariants:
//! 1. Each `next` is one read (`readline`, or `read(n)`), so the rules of
//!    that read hold: one waiter at a time, flow control, cancellation
//!    leaves the bytes buffered.
//! 2. EOF (an empty line or chunk) ends the iteration: that `next` and
//!    every later one return `None`. An error is returned as `Some(Err)`,
//!    and the next call reads again (the reader's exception, once set,
//!    comes back every time), as asyncio's `__anext__` raises each time.

use loop_futures::Error;

use super::reader::StreamReader;

/// The lines of a [`StreamReader`]; see [`StreamReader::lines`].
#[derive(Debug)]
pub struct Lines {
    reader: StreamReader,
    done: bool,
}

impl Lines {
    pub(super) fn new(reader: StreamReader) -> Lines {
        Lines {
            reader,
            done: false,
        }
    }

    /// The next line (with its `\n`, or what was left before EOF), `None`
    /// at EOF.
    ///
    /// # Errors
    ///
    /// As [`StreamReader::readline`].
    pub async fn next(&mut self) -> Option<Result<Vec<u8>, Error>> {
        if self.done {
            return None;
        }
        let line = self.reader.readline().await;
        item(&mut self.done, line)
    }
}

/// Invariant 2: an empty result (EOF) ends the iteration; anything else,
/// an error included, is the next item.
fn item(done: &mut bool, result: Result<Vec<u8>, Error>) -> Option<Result<Vec<u8>, Error>> {
    match result {
        Ok(bytes) if bytes.is_empty() => {
            *done = true;
            None
        }
        other => Some(other),
    }
}

/// The chunks of a [`StreamReader`]; see [`StreamReader::chunks`].
#[derive(Debug)]
pub struct Chunks {
    reader: StreamReader,
    size: usize,
    done: bool,
}

impl Chunks {
    pub(super) fn new(reader: StreamReader, size: usize) -> Chunks {
        Chunks {
            reader,
            size,
            done: false,
        }
    }

    /// The next chunk: what `read(n)` returns (1 to `n` bytes, as soon as
    /// there are any), `None` at EOF.
    ///
    /// # Errors
    ///
    /// As [`StreamReader::read`]; `InvalidInput` for chunks of 0 bytes
    /// (`read(0)` would return an empty chunk, which means EOF here), once,
    /// then `None`.
    pub async fn next(&mut self) -> Option<Result<Vec<u8>, Error>> {
        if self.done {
            return None;
        }
        if self.size == 0 {
            self.done = true;
            return Some(Err(Error::new(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "chunk size must be at least 1",
            ))));
        }
        // Past isize::MAX, "up to everything there is" all the same.
        let n = isize::try_from(self.size).unwrap_or(isize::MAX);
        let chunk = self.reader.read(n).await;
        item(&mut self.done, chunk)
    }
}
