//! [`WriteData`]: what [`StreamWriter::write`](super::StreamWriter::write)
//! accepts (asyncio's "bytes-like object").
//!
//! Borrowed bytes are sent or copied into the transport's buffer, as
//! `Transport::write` does; an owned vector is used the same way, and then,
//! no longer needed, offered to the connection's reader as the chunk its
//! next receive goes into (a vector that `read` returned is exactly such a
//! chunk). So `writer.write(reader.read(n).await?)` echoes without an
//! allocation per message.
//!
//! Invariant: `bytes` is what gets written, whichever form the data has;
//! `into_vec` only ever passes on a buffer whose bytes were already used.

/// Bytes a [`StreamWriter`](super::StreamWriter) can write.
///
/// Implemented for `&[u8]`, `&[u8; N]`, `&Vec<u8>`, `Vec<u8>`, `&str`,
/// `&String` and `String`. Implement it for a buffer type of your own to
/// write it without converting it first.
pub trait WriteData {
    /// The bytes to write.
    fn bytes(&self) -> &[u8];

    /// The vector holding the bytes, when the data owns one: once the bytes
    /// are written the writer offers it to the connection's reader for its
    /// next receive. The default (borrowed data) has none.
    fn into_vec(self) -> Option<Vec<u8>>
    where
        Self: Sized,
    {
        None
    }
}

impl WriteData for &[u8] {
    fn bytes(&self) -> &[u8] {
        self
    }
}

impl<const N: usize> WriteData for &[u8; N] {
    fn bytes(&self) -> &[u8] {
        &self[..]
    }
}

impl WriteData for &Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

impl WriteData for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }

    fn into_vec(self) -> Option<Vec<u8>> {
        Some(self)
    }
}

impl WriteData for &str {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl WriteData for &String {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl WriteData for String {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }

    fn into_vec(self) -> Option<Vec<u8>> {
        Some(self.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::WriteData;

    fn parts<D: WriteData>(data: D) -> (Vec<u8>, Option<usize>) {
        let bytes = data.bytes().to_vec();
        (bytes, data.into_vec().map(|v| v.capacity()))
    }

    #[test]
    fn every_form_writes_its_bytes() {
        let v = b"abc".to_vec();
        let s = String::from("abc");
        assert_eq!(parts(&b"abc"[..]), (b"abc".to_vec(), None));
        assert_eq!(parts(b"abc"), (b"abc".to_vec(), None));
        assert_eq!(parts(&v), (b"abc".to_vec(), None));
        assert_eq!(parts("abc"), (b"abc".to_vec(), None));
        assert_eq!(parts(&s), (b"abc".to_vec(), None));
    }

    #[test]
    fn owned_forms_pass_their_vector_on() {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(b"abc");
        let ptr = v.as_ptr();
        let bytes = v.bytes().to_vec();
        let back = v.into_vec().expect("a Vec owns its buffer");
        assert_eq!(bytes, b"abc");
        assert_eq!(back.as_ptr(), ptr, "the same allocation, not a copy");
        assert_eq!(back.capacity(), 64);
        let s = String::with_capacity(32) + "xy";
        assert_eq!(parts(s), (b"xy".to_vec(), Some(32)));
    }
}
