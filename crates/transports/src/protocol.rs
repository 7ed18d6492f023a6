//! The protocol traits: what a connection calls back into (asyncio's
//! `protocols.py`).
//!
//! # The callback grammar
//!
//! ```text
//! start -> connection_made -> data_received* -> eof_received? -> connection_lost -> end
//! ```
//!
//! `pause_writing` / `resume_writing` may come in between, in pairs, while
//! the connection is open. The transport enforces the grammar: no call
//! before `connection_made`, none after `connection_lost`, and
//! `connection_lost` exactly once.
//!
//! # Re-entrancy
//!
//! A protocol method is never entered while another of the same protocol
//! runs. When a call the protocol makes (`transport.write` past the
//! high-water mark, say) would re-enter it, the transport delivers the
//! resulting callback (`pause_writing`) right after the running one returns
//! — asyncio calls it synchronously, but Rust's `&mut self` forbids that.

use std::io;

use crate::transport::Transport;

/// Callbacks common to every protocol (asyncio's `BaseProtocol`).
pub trait BaseProtocol: 'static {
    /// The connection is up; `transport` is the handle to write with (keep a
    /// clone). Called once, first.
    fn connection_made(&mut self, transport: Transport) {
        let _ = transport;
    }

    /// The connection is closed: `None` after a regular close or EOF,
    /// `Some(err)` after an error. Called once, last.
    fn connection_lost(&mut self, exc: Option<io::Error>) {
        let _ = exc;
    }

    /// The transport's write buffer went over the high-water mark.
    fn pause_writing(&mut self) {}

    /// The transport's write buffer drained below the low-water mark.
    fn resume_writing(&mut self) {}
}

/// A stream protocol (asyncio's `Protocol`): data arrives as slices.
///
/// # Examples
///
/// An echo protocol:
///
/// ```
/// use loop_transports::{BaseProtocol, Protocol, Transport};
///
/// #[derive(Default)]
/// struct Echo {
///     transport: Option<Transport>,
/// }
///
/// impl BaseProtocol for Echo {
///     fn connection_made(&mut self, transport: Transport) {
///         self.transport = Some(transport);
///     }
/// }
///
/// impl Protocol for Echo {
///     fn data_received(&mut self, data: &[u8]) {
///         if let Some(t) = &self.transport {
///             t.write(data);
///         }
///     }
/// }
/// # let _ = Echo::default();
/// ```
pub trait Protocol: BaseProtocol {
    /// Some bytes arrived. The slice is only valid during the call.
    fn data_received(&mut self, data: &[u8]);

    /// The peer closed its write side. Return true to keep the connection
    /// open for writing (half-close); false closes the transport.
    fn eof_received(&mut self) -> bool {
        false
    }
}

/// A stream protocol that supplies its own receive buffer (asyncio's
/// `BufferedProtocol`): the kernel reads straight into it.
pub trait BufferedProtocol: BaseProtocol {
    /// A buffer to read into; `size_hint` is what the transport would like
    /// (an empty buffer is an error that closes the connection).
    fn get_buffer(&mut self, size_hint: usize) -> &mut [u8];

    /// `nbytes` bytes were written at the start of the last buffer.
    fn buffer_updated(&mut self, nbytes: usize);

    /// As [`Protocol::eof_received`].
    fn eof_received(&mut self) -> bool {
        false
    }
}
