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
/// Implemented for a reference to anything that is `AsRef<[u8]>` (`&[u8]`,
/// `&[u8; N]`, `&Vec<u8>`, `&str`, `&String`, `&Box<[u8]>`, `&Rc<[u8]>`,
/// `&Cow<[u8]>`, `&&[u8]`, and `&mut` of them), and for the owned
/// `Vec<u8>`, `String` and `Box<[u8]>`. Implement it for an owned buffer
/// type of your own to write it without converting it first.
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

impl<T: AsRef<[u8]> + ?Sized> WriteData for &T {
    fn bytes(&self) -> &[u8] {
        (**self).as_ref()
    }
}

impl<T: AsRef<[u8]> + ?Sized> WriteData for &mut T {
    fn bytes(&self) -> &[u8] {
        (**self).as_ref()
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

impl WriteData for String {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }

    fn into_vec(self) -> Option<Vec<u8>> {
        Some(self.into_bytes())
    }
}

impl WriteData for Box<[u8]> {
    fn bytes(&self) -> &[u8] {
        self
    }

    fn into_vec(self) -> Option<Vec<u8>> {
        Some(self.into_vec())
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
        let mut v = b"abc".to_vec();
        let s = String::from("abc");
        let slice: &[u8] = b"abc";
        let shared: std::rc::Rc<[u8]> = std::rc::Rc::from(&b"abc"[..]);
        let cow = std::borrow::Cow::Borrowed(&b"abc"[..]);
        let abc = (b"abc".to_vec(), None);
        assert_eq!(parts(slice), abc);
        // An iterator over slices yields `&&[u8]`.
        let slices = [slice, slice];
        assert!(slices.iter().all(|item| parts(item) == abc), "&&[u8]");
        assert_eq!(parts(b"abc"), abc);
        let array = [b'a', b'b', b'c'];
        assert_eq!(parts(&array), abc);
        assert_eq!(parts(&v), abc);
        assert_eq!(parts(&mut v), abc);
        assert_eq!(parts(&mut v[..]), abc);
        assert_eq!(parts("abc"), abc);
        assert_eq!(parts(&s), abc);
        assert_eq!(parts(&shared), abc);
        assert_eq!(parts(&cow), abc);
        let boxed = b"abc".to_vec().into_boxed_slice();
        assert_eq!(parts(&boxed), abc);
        assert_eq!(parts(boxed), (b"abc".to_vec(), Some(3)), "owned: passed on");
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
        let boxed: Box<[u8]> = b"xyz".to_vec().into_boxed_slice();
        assert_eq!(parts(boxed), (b"xyz".to_vec(), Some(3)));
    }
}
