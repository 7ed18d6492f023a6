//! One receive buffer per loop, shared by all its stream transports.
//!
//! Reads happen only from the loop's dispatch, one transport at a time,
//! and a protocol sees the bytes only during `data_received`; so one
//! 256 KiB buffer serves every connection (a server with 1000 connections
//! does not hold 1000 buffers). A `BufferedProtocol` receives into its
//! own buffer instead, and so does a `StreamReaderProtocol`: past small
//! messages into a chunk of its reader's buffer, and small ones into the
//! spare chunk its last read left, or, with none (a reader's first
//! receives), through here and copied into the reader's buffer.

use std::cell::RefCell;
use std::rc::Rc;

use loop_core::EventLoop;

/// The loop's shared read buffer (an extension of the loop).
pub(crate) struct SharedReadBuffer(RefCell<Vec<u8>>);

pub(crate) fn shared_read_buffer(ev: &EventLoop, size: usize) -> SharedRef {
    let buffer = ev.extension_or_insert_with(|| SharedReadBuffer(RefCell::new(vec![0; size])));
    SharedRef(buffer)
}

/// A handle to the shared buffer.
pub(crate) struct SharedRef(Rc<SharedReadBuffer>);

impl SharedRef {
    pub(crate) fn try_borrow_mut(
        &self,
    ) -> Result<std::cell::RefMut<'_, Vec<u8>>, std::cell::BorrowMutError> {
        self.0.0.try_borrow_mut()
    }
}
