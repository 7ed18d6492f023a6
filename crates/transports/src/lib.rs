//! asyncio's Transports and Protocols for tulip: TCP connections and
//! servers whose protocol callbacks complete futures.
//!
//! * [`Protocol`] / [`BufferedProtocol`]: what a connection calls back into
//!   (`connection_made`, `data_received`, `eof_received`,
//!   `connection_lost`, `pause_writing`, `resume_writing`).
//! * [`Transport`]: the handle to write with and control the connection.
//! * [`create_connection`], [`create_server`], [`Server`],
//!   [`connect_accepted_socket`], [`getaddrinfo`], [`getnameinfo`].
//!
//! # Examples
//!
//! An echo server and a client on one loop:
//!
//! ```
//! use loop_core::EventLoop;
//! use loop_futures::{Error, EventLoopExt, Future};
//! use loop_transports::{
//!     BaseProtocol, ConnectOptions, Protocol, ServerOptions, Transport, create_connection,
//!     create_server,
//! };
//!
//! struct Echo(Option<Transport>);
//! impl BaseProtocol for Echo {
//!     fn connection_made(&mut self, t: Transport) { self.0 = Some(t); }
//! }
//! impl Protocol for Echo {
//!     fn data_received(&mut self, data: &[u8]) { self.0.as_ref().unwrap().write(data); }
//! }
//!
//! struct Client { got: Vec<u8>, done: Future<Vec<u8>> }
//! impl BaseProtocol for Client {
//!     fn connection_made(&mut self, t: Transport) { t.write(b"ping"); }
//!     fn connection_lost(&mut self, _exc: Option<std::io::Error>) {}
//! }
//! impl Protocol for Client {
//!     fn data_received(&mut self, data: &[u8]) {
//!         self.got.extend_from_slice(data);
//!         if self.got.len() == 4 { let _ = self.done.set_result(self.got.clone()); }
//!     }
//! }
//!
//! let ev = EventLoop::new().unwrap();
//! let ev2 = ev.clone();
//! let reply = ev.run_until_complete(async move {
//!     let server = create_server(&ev2, || Echo(None), &["127.0.0.1"], 0, ServerOptions::default()).await?;
//!     let port = server.sockets()[0].port();
//!     let done = ev2.create_future();
//!     let d = done.clone();
//!     let (transport, _client) = create_connection(
//!         &ev2, move || Client { got: Vec::new(), done: d }, Some("127.0.0.1"), Some(port),
//!         ConnectOptions::default(),
//!     ).await?;
//!     let reply = done.await?;
//!     transport.close();
//!     server.close();
//!     Ok::<_, Error>(reply)
//! }).unwrap();
//! assert_eq!(reply, b"ping");
//! ```

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod connect;
mod constants;
mod dns;
mod flow_control;
mod protocol;
mod protocol_sink;
mod read_buffer;
mod server;
mod streams;
mod tcp;
mod transport;
mod write_buffer;

pub use connect::{
    ConnectError, ConnectOptions, connect_accepted_socket, create_connection,
    create_connection_buffered,
};
pub use constants::{
    ACCEPT_RETRY_DELAY, DEFAULT_BACKLOG, DEFAULT_HIGH_WATER, LOG_THRESHOLD_FOR_CONNLOST_WRITES,
    MAX_READ_SIZE, READS_PER_WAKEUP,
};
pub use dns::{NameInfoFlags, getaddrinfo, getnameinfo};
pub use flow_control::{InvalidWriteLimits, WriteLimits};
pub use protocol::{BaseProtocol, BufferedProtocol, Protocol};
pub use server::{Server, ServerOptions, create_server, create_server_buffered};
pub use streams::{
    BufferCapExceeded, Chunks, DEFAULT_LIMIT, IncompleteReadError, LimitOverrunError, Lines,
    StreamOptions, StreamRead, StreamReader, StreamReaderProtocol, StreamWriter, WriteData,
    open_connection, start_server, start_server_with,
};
pub use transport::{ExtraInfo, Transport};
