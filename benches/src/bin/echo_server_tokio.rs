//! The tokio peer of the echo benchmark: a current-thread runtime, one task
//! per connection, `read` + `write_all`, TCP_NODELAY. Prints
//! `listening on ADDR` and serves until killed.
//!
//! Each task reads into its own 256 KiB buffer: the most one read returns,
//! as tulip's transport (asyncio's `max_size`), tulip's streams echo and
//! the mio peer, so every server reads up to 256 KiB per call.
//!
//! Usage: `echo_server_tokio --port 0`

#![allow(clippy::print_stdout)]

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The most one `read` returns (256 KiB, as the other servers).
const READ_SIZE: usize = 256 * 1024;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args
        .windows(2)
        .find(|w| w[0] == "--port")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (mut stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                // `vec![0; N]` is a zeroed allocation (calloc; fresh mmap
                // pages at this size), so the pages a small message never
                // touches are never made resident: 1000 connections do not
                // cost 1000 x 256 KiB of RSS.
                let mut buf = vec![0u8; READ_SIZE];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}
