//! Name resolution off the loop thread (asyncio's `loop.getaddrinfo` /
//! `loop.getnameinfo`, which run in the default executor).
//!
//! Invariant: the loop thread never blocks on DNS. A host that is already
//! an IP literal is answered at once without the executor (asyncio's
//! `_ipaddr_info` shortcut).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use loop_core::EventLoop;
use loop_futures::{Error, run_in_executor};

/// Resolves `host:port` to socket addresses, on the default executor.
///
/// Equivalent of [`loop.getaddrinfo`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.getaddrinfo)
/// for stream sockets.
///
/// # Errors
///
/// The resolver's error (an `io::Error` inside [`Error::Exception`]), or
/// the executor's.
pub async fn getaddrinfo(ev: &EventLoop, host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let host = host.to_string();
    let lookup = run_in_executor(ev, None, move || {
        (host.as_str(), port)
            .to_socket_addrs()
            .map(|addrs| addrs.collect::<Vec<_>>())
            .map_err(Error::from)
    })?;
    // Given up on (dropped mid-await), the lookup is cancelled: one not
    // started yet never runs.
    lookup.cancel_on_drop().await?
}

/// Flags for [`getnameinfo`] (the `NI_*` flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NameInfoFlags {
    /// Return the host as a numeric address (`NI_NUMERICHOST`).
    pub numeric_host: bool,
    /// Return the port as a number (`NI_NUMERICSERV`).
    pub numeric_serv: bool,
    /// Fail if the host has no name (`NI_NAMEREQD`).
    pub name_required: bool,
}

impl NameInfoFlags {
    fn bits(self) -> i32 {
        let mut bits = 0;
        if self.numeric_host {
            bits |= libc::NI_NUMERICHOST;
        }
        if self.numeric_serv {
            bits |= libc::NI_NUMERICSERV;
        }
        if self.name_required {
            bits |= libc::NI_NAMEREQD;
        }
        bits
    }
}

/// Resolves `addr` to `(host, service)`, on the default executor.
///
/// Equivalent of [`loop.getnameinfo`](https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.getnameinfo).
///
/// # Errors
///
/// The resolver's error, or the executor's.
pub async fn getnameinfo(
    ev: &EventLoop,
    addr: SocketAddr,
    flags: NameInfoFlags,
) -> Result<(String, String), Error> {
    let bits = flags.bits();
    let lookup = run_in_executor(ev, None, move || {
        dns_lookup::getnameinfo(&addr, bits).map_err(|e| Error::from(std::io::Error::from(e)))
    })?;
    lookup.cancel_on_drop().await?
}
