//! [`open_connection`] and [`start_server`] (asyncio's stream helpers).

use std::io;
use std::rc::Rc;

use loop_core::EventLoop;
use loop_futures::{Error, EventLoopExt, IntoTaskResult};

use super::DEFAULT_LIMIT;
use super::protocol::{ClientConnected, StreamReaderProtocol};
use super::reader::StreamReader;
use super::writer::StreamWriter;
use crate::connect::{ConnectOptions, create_connection};
use crate::server::{Server, ServerOptions, create_server};

/// Options of the stream helpers.
#[derive(Debug, Default)]
pub struct StreamOptions {
    /// The reader's buffer limit (default 64 KiB; 0 is refused).
    pub limit: Option<usize>,
    /// Connection options ([`open_connection`]).
    pub connect: ConnectOptions,
    /// Server options ([`start_server`]).
    pub server: ServerOptions,
}

/// The readers' limit `options` ask for.
///
/// # Errors
///
/// `InvalidInput` for 0 (asyncio's `ValueError('Limit cannot be <= 0')`).
fn limit(options: &StreamOptions) -> Result<usize, Error> {
    match options.limit {
        Some(0) => Err(Error::new(io::Error::new(
            io::ErrorKind::InvalidInput,
            "Limit cannot be <= 0",
        ))),
        limit => Ok(limit.unwrap_or(DEFAULT_LIMIT)),
    }
}

/// Connects to `host:port` and returns a reader and a writer.
///
/// Equivalent of [`asyncio.open_connection`](https://docs.python.org/3/library/asyncio-stream.html#asyncio.open_connection).
///
/// # Errors
///
/// As [`create_connection`]; `InvalidInput` for a `limit` of 0.
pub async fn open_connection(
    ev: &EventLoop,
    host: &str,
    port: u16,
    options: StreamOptions,
) -> Result<(StreamReader, StreamWriter), Error> {
    let reader = StreamReader::new(limit(&options)?);
    let r = reader.clone();
    let (transport, _protocol) = create_connection(
        ev,
        move || StreamReaderProtocol::new(r),
        Some(host),
        Some(port),
        options.connect,
    )
    .await?;
    let writer = StreamWriter::new(transport, reader.clone());
    Ok((reader, writer))
}

/// Starts a server that calls `client_connected(reader, writer)` for each
/// client and runs the coroutine it returns as a task.
///
/// Equivalent of [`asyncio.start_server`](https://docs.python.org/3/library/asyncio-stream.html#asyncio.start_server).
/// A coroutine that fails is reported to the exception handler and its
/// connection closed, as asyncio does. For a plain (non-async) callback,
/// return `async { Ok::<_, Error>(()) }` or use [`start_server_with`].
///
/// # Errors
///
/// As [`create_server`]; `InvalidInput` for a `limit` of 0.
pub async fn start_server<C, Fut, R>(
    ev: &EventLoop,
    client_connected: C,
    hosts: &[&str],
    port: u16,
    options: StreamOptions,
) -> Result<Server, Error>
where
    C: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: std::future::Future<Output = R> + 'static,
    R: IntoTaskResult<Ok = ()>,
{
    let callback: ClientConnected = Rc::new(move |reader, writer, ev: &EventLoop| {
        Some(ev.create_task(client_connected(reader, writer)))
    });
    serve(ev, callback, hosts, port, options).await
}

/// [`start_server`] with a plain callback: it runs inside
/// `connection_made` and may start tasks itself.
///
/// # Errors
///
/// As [`create_server`]; `InvalidInput` for a `limit` of 0.
pub async fn start_server_with<C>(
    ev: &EventLoop,
    client_connected: C,
    hosts: &[&str],
    port: u16,
    options: StreamOptions,
) -> Result<Server, Error>
where
    C: Fn(StreamReader, StreamWriter) + 'static,
{
    let callback: ClientConnected = Rc::new(move |reader, writer, _: &EventLoop| {
        client_connected(reader, writer);
        None
    });
    serve(ev, callback, hosts, port, options).await
}

async fn serve(
    ev: &EventLoop,
    callback: ClientConnected,
    hosts: &[&str],
    port: u16,
    options: StreamOptions,
) -> Result<Server, Error> {
    let limit = limit(&options)?;
    create_server(
        ev,
        move || {
            StreamReaderProtocol::with_callback(StreamReader::new(limit), Some(callback.clone()))
        },
        hosts,
        port,
        options.server,
    )
    .await
}
