//! The bytes a transport could not send yet.
//!
//! Invariants:
//! 1. `len` is the number of unsent bytes across all chunks, after the
//!    consumed prefix `head` of the first chunk.
//! 2. Small writes are appended to the last chunk (up to `COALESCE`), so a
//!    stream of tiny writes does not grow the chunk list.
//! 3. Draining hands at most [`MAX_IOVECS`] slices to one vectored send.

use std::collections::VecDeque;
use std::io::IoSlice;

use crate::constants::MAX_IOVECS;

const COALESCE: usize = 64 * 1024;

#[derive(Debug, Default)]
pub(crate) struct WriteBuffer {
    chunks: VecDeque<Vec<u8>>,
    head: usize,
    len: usize,
}

impl WriteBuffer {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        match self.chunks.back_mut() {
            Some(last) if last.len() + data.len() <= COALESCE => last.extend_from_slice(data),
            _ => self.chunks.push_back(data.to_vec()),
        }
        self.len += data.len();
    }

    /// Fills `out` with the unsent bytes as slices for a vectored send;
    /// returns how many slices were filled.
    pub(crate) fn slices<'a>(&'a self, out: &mut [IoSlice<'a>; MAX_IOVECS]) -> usize {
        let mut count = 0;
        for (i, chunk) in self.chunks.iter().take(MAX_IOVECS).enumerate() {
            let start = if i == 0 { self.head } else { 0 };
            out[i] = IoSlice::new(&chunk[start..]);
            count += 1;
        }
        count
    }

    /// Drops the first `n` unsent bytes (they were sent).
    pub(crate) fn consume(&mut self, mut n: usize) {
        debug_assert!(n <= self.len);
        self.len -= n;
        while n > 0 {
            let Some(first) = self.chunks.front() else {
                break;
            };
            let available = first.len() - self.head;
            if n >= available {
                n -= available;
                self.head = 0;
                self.chunks.pop_front();
            } else {
                self.head += n;
                n = 0;
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consume_across_chunks_keeps_order() {
        let mut buf = WriteBuffer::default();
        buf.push(b"hello ");
        buf.push(&vec![b'x'; COALESCE]);
        buf.push(b"world");
        assert_eq!(buf.len(), 6 + COALESCE + 5);
        buf.consume(3);
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let count = buf.slices(&mut slices);
        let joined: Vec<u8> = slices[..count]
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect();
        assert_eq!(&joined[..3], b"lo ");
        assert_eq!(&joined[joined.len() - 5..], b"world");
        buf.consume(buf.len());
        assert!(buf.is_empty());
    }
}
