//! The ceiling of the echo benchmark: a bare, hand-written mio echo loop.
//!
//! One thread, edge-triggered, one shared 256 KiB read buffer, write back
//! at once, buffer only what the socket did not take (like the tulip
//! transport). Prints `listening on ADDR` and serves until killed.
//!
//! Usage: `echo_server_mio --port 0`

#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::io::{self, Read, Write};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args
        .windows(2)
        .find(|w| w[0] == "--port")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(0);
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(format!("127.0.0.1:{port}").parse().expect("addr"))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("listening on {}", listener.local_addr()?);
    let mut events = Events::with_capacity(1024);
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut next = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_nodelay(true)?;
                            let token = Token(next);
                            next += 1;
                            poll.registry().register(
                                &mut stream,
                                token,
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            conns.insert(
                                token.0,
                                Conn {
                                    stream,
                                    pending: Vec::new(),
                                },
                            );
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let key = event.token().0;
            let mut close = false;
            if let Some(conn) = conns.get_mut(&key) {
                if event.is_writable() && !conn.pending.is_empty() {
                    match conn.stream.write(&conn.pending) {
                        Ok(n) => {
                            conn.pending.drain(..n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => close = true,
                    }
                }
                if event.is_readable() {
                    loop {
                        match conn.stream.read(&mut buf) {
                            Ok(0) => {
                                close = true;
                                break;
                            }
                            Ok(n) => {
                                let data = &buf[..n];
                                if conn.pending.is_empty() {
                                    match conn.stream.write(data) {
                                        Ok(w) if w == n => {}
                                        Ok(w) => conn.pending.extend_from_slice(&data[w..]),
                                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                            conn.pending.extend_from_slice(data);
                                        }
                                        Err(_) => {
                                            close = true;
                                            break;
                                        }
                                    }
                                } else {
                                    conn.pending.extend_from_slice(data);
                                }
                                if n < buf.len() {
                                    break;
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(_) => {
                                close = true;
                                break;
                            }
                        }
                    }
                }
            }
            if close {
                if let Some(mut conn) = conns.remove(&key) {
                    let _ = poll.registry().deregister(&mut conn.stream);
                }
            }
        }
    }
}
