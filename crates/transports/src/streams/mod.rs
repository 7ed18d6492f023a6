//! Streams: asyncio's high-level network API (`streams.py`) on the
//! transports.
//!
//! * [`open_connection`] → ([`StreamReader`], [`StreamWriter`]).
//! * [`start_server`] → a [`Server`](crate::Server) that hands each client a
//!   reader and a writer.
//!
//! How the layers meet: a [`StreamReaderProtocol`] is the connection's
//! protocol; the transport receives into the reader's buffer (its
//! `data_received`, the same thing with a copy, serves callers that feed
//! it by hand), which pauses the transport's reading past `2 × limit` and
//! resumes it when a read brings the buffer back to `limit`; reads hand
//! received chunks over without copying them when they take a whole
//! chunk; `pause_writing` / `resume_writing` gate the writer's
//! [`drain`](StreamWriter::drain), and the writer's `write` is the
//! transport's (no copy of its own); an owned vector written goes back to
//! the reader as its next receive room ([`WriteData`]).
//!
//! # Examples
//!
//! A line echo server and a client:
//!
//! ```
//! use loop_core::EventLoop;
//! use loop_futures::{Error, EventLoopExt};
//! use loop_transports::{StreamOptions, open_connection, start_server};
//!
//! let ev = EventLoop::new().unwrap();
//! let ev2 = ev.clone();
//! let reply = ev.run_until_complete(async move {
//!     let server = start_server(&ev2, |reader, writer| async move {
//!         while let Some(line) = reader.lines().next().await {
//!             writer.write(&line?)?;
//!             writer.drain().await?;
//!         }
//!         writer.close();
//!         Ok::<_, Error>(())
//!     }, &["127.0.0.1"], 0, StreamOptions::default()).await?;
//!     let port = server.sockets()[0].port();
//!     let (reader, writer) = open_connection(&ev2, "127.0.0.1", port, StreamOptions::default()).await?;
//!     writer.write(b"hello\n")?;
//!     let reply = reader.readline().await?;
//!     writer.close();
//!     server.close();
//!     Ok::<_, Error>(reply)
//! }).unwrap();
//! assert_eq!(reply, b"hello\n");
//! ```

mod api;
mod buffer;
mod errors;
mod iterate;
mod protocol;
mod reader;
mod write_data;
mod writer;

pub use api::{StreamOptions, open_connection, start_server, start_server_with};
pub(crate) use buffer::Room;
pub use errors::{IncompleteReadError, LimitOverrunError};
pub use iterate::{Chunks, Lines};
pub use protocol::StreamReaderProtocol;
pub use reader::{StreamRead, StreamReader};
pub use write_data::WriteData;
pub use writer::{BufferCapExceeded, StreamWriter};

/// Default buffer limit of a [`StreamReader`] (64 KiB, asyncio's
/// `_DEFAULT_LIMIT`).
pub const DEFAULT_LIMIT: usize = 64 * 1024;
