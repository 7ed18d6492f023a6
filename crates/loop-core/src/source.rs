//! Edge-triggered I/O sources: the seam transports use.
//!
//! `add_reader`/`add_writer` emulate asyncio's level-triggered callbacks,
//! which costs an `epoll_ctl` re-arm after every call. A transport does not
//! need that: it reads until the socket is drained (or its budget is spent)
//! and writes until `WouldBlock`, so it can take mio's edge-triggered events
//! as they are. A source is one fd plus one handler that receives the
//! [`Readiness`] of each event.
//!
//! Invariants:
//! 1. A source is registered once for the interest it asked for; there is no
//!    re-arm, so a handler that stops before `WouldBlock` must ask for
//!    another call with [`EventLoop::schedule_source`].
//! 2. A source is in the ready queue at most once: readiness that arrives
//!    while it is queued is merged into the queued entry (`pending`), and the
//!    handler gets the union when it runs.
//! 3. Ids carry a generation, so an event or a schedule for a deregistered
//!    source whose slot was reused never reaches the new handler.
//! 4. Dispatch allocates nothing: a `Copy` ready-queue entry and an `Rc`
//!    clone of the handler.

use std::fmt;
use std::ops::BitOr;
use std::os::fd::RawFd;
use std::rc::Rc;

use mio::{Interest, Registry, Token};
use slab::Slab;

use crate::event_loop::EventLoop;
use crate::ready::{Ready, ReadyQueue};

const SOURCE_BIT: usize = 1 << 62;
const GEN_MASK: u32 = 0x3fff_ffff;

/// What an I/O event reported for a source.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Readiness(u8);

impl Readiness {
    /// Nothing.
    pub const EMPTY: Readiness = Readiness(0);
    /// Data (or a connection, or EOF) can be read.
    pub const READABLE: Readiness = Readiness(1);
    /// Data can be written.
    pub const WRITABLE: Readiness = Readiness(2);
    /// The peer closed its write side (EOF after the buffered data).
    pub const READ_CLOSED: Readiness = Readiness(4);
    /// The write side is closed (peer gone).
    pub const WRITE_CLOSED: Readiness = Readiness(8);
    /// The socket has a pending error.
    pub const ERROR: Readiness = Readiness(16);

    /// True if any read-side bit is set (readable, read-closed, error).
    pub fn is_readable(self) -> bool {
        self.0 & (1 | 4 | 16) != 0
    }

    /// True if any write-side bit is set (writable, write-closed, error).
    pub fn is_writable(self) -> bool {
        self.0 & (2 | 8 | 16) != 0
    }

    /// True if the peer closed its write side.
    pub fn is_read_closed(self) -> bool {
        self.0 & 4 != 0
    }

    /// True if the write side is closed.
    pub fn is_write_closed(self) -> bool {
        self.0 & 8 != 0
    }

    /// True if an error is pending on the socket.
    pub fn is_error(self) -> bool {
        self.0 & 16 != 0
    }

    /// True if nothing is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn from_event(event: &mio::event::Event) -> Readiness {
        let mut bits = 0;
        if event.is_readable() {
            bits |= 1;
        }
        if event.is_writable() {
            bits |= 2;
        }
        if event.is_read_closed() {
            bits |= 4;
        }
        if event.is_write_closed() {
            bits |= 8;
        }
        if event.is_error() {
            bits |= 16;
        }
        Readiness(bits)
    }
}

impl BitOr for Readiness {
    type Output = Readiness;

    fn bitor(self, rhs: Readiness) -> Readiness {
        Readiness(self.0 | rhs.0)
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            "READABLE",
            "WRITABLE",
            "READ_CLOSED",
            "WRITE_CLOSED",
            "ERROR",
        ];
        let set: Vec<&str> = names
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect();
        write!(
            f,
            "Readiness({})",
            if set.is_empty() {
                "EMPTY".to_string()
            } else {
                set.join(" | ")
            }
        )
    }
}

/// Receives the readiness events of a source registered with
/// [`EventLoop::register_source`].
pub trait SourceHandler {
    /// Called from the ready queue with the readiness accumulated since the
    /// last call. Edge-triggered: drain (or reschedule) before returning.
    fn on_ready(self: Rc<Self>, ev: &EventLoop, readiness: Readiness);
}

/// Identifies a registered source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId {
    key: u32,
    generation: u32,
}

impl SourceId {
    pub(crate) fn key(self) -> u32 {
        self.key
    }

    pub(crate) fn generation(self) -> u32 {
        self.generation
    }
}

struct SourceEntry {
    generation: u32,
    fd: RawFd,
    handler: Rc<dyn SourceHandler>,
    pending: Readiness,
    queued: bool,
}

/// Every source of one loop.
#[derive(Default)]
pub(crate) struct SourceSet {
    entries: Slab<SourceEntry>,
    next_gen: u32,
}

/// The mio token of a source.
fn token(key: u32, generation: u32) -> Token {
    Token(SOURCE_BIT | key as usize | ((generation as usize) << 32))
}

/// Splits a source token; `None` for tokens that are not a source's.
pub(crate) fn unpack(token: Token) -> Option<(u32, u32)> {
    let raw = token.0;
    if raw >> 62 != 1 {
        return None;
    }
    Some((raw as u32, ((raw >> 32) as u32) & GEN_MASK))
}

impl SourceSet {
    pub(crate) fn register(
        &mut self,
        registry: &Registry,
        fd: RawFd,
        interest: Interest,
        handler: Rc<dyn SourceHandler>,
    ) -> Result<SourceId, (std::io::Error, Rc<dyn SourceHandler>)> {
        let generation = self.next_gen;
        self.next_gen = (self.next_gen + 1) & GEN_MASK;
        let vacant = self.entries.vacant_entry();
        let key = vacant.key() as u32;
        // A refused fd hands the handler back: the caller drops it outside
        // the loop's borrows (its destructor may use the loop).
        if let Err(err) = registry.register(
            &mut mio::unix::SourceFd(&fd),
            token(key, generation),
            interest,
        ) {
            return Err((err, handler));
        }
        vacant.insert(SourceEntry {
            generation,
            fd,
            handler,
            pending: Readiness::EMPTY,
            queued: false,
        });
        Ok(SourceId { key, generation })
    }

    pub(crate) fn reregister(
        &mut self,
        registry: &Registry,
        id: SourceId,
        interest: Interest,
    ) -> std::io::Result<bool> {
        let Some(entry) = self.get_mut(id) else {
            return Ok(false);
        };
        let fd = entry.fd;
        registry.reregister(
            &mut mio::unix::SourceFd(&fd),
            token(id.key, id.generation),
            interest,
        )?;
        Ok(true)
    }

    /// Removes the source; returns its handler for the caller to drop.
    pub(crate) fn deregister(
        &mut self,
        registry: Option<&Registry>,
        id: SourceId,
    ) -> Option<Rc<dyn SourceHandler>> {
        self.get_mut(id)?;
        let entry = self.entries.remove(id.key as usize);
        if let Some(registry) = registry {
            let _ = registry.deregister(&mut mio::unix::SourceFd(&entry.fd));
        }
        Some(entry.handler)
    }

    fn get_mut(&mut self, id: SourceId) -> Option<&mut SourceEntry> {
        self.entries
            .get_mut(id.key as usize)
            .filter(|e| e.generation == id.generation)
    }

    /// Merges `readiness` into the source and queues it once (invariant 2).
    pub(crate) fn mark(
        &mut self,
        key: u32,
        generation: u32,
        readiness: Readiness,
        ready: &mut ReadyQueue,
    ) {
        let Some(entry) = self.get_mut(SourceId { key, generation }) else {
            return;
        };
        entry.pending = entry.pending | readiness;
        if !entry.queued {
            entry.queued = true;
            ready.push(Ready::Source { key, generation });
        }
    }

    /// Takes the pending readiness and the handler to call.
    pub(crate) fn take(
        &mut self,
        key: u32,
        generation: u32,
    ) -> Option<(Rc<dyn SourceHandler>, Readiness)> {
        let entry = self.get_mut(SourceId { key, generation })?;
        entry.queued = false;
        let readiness = std::mem::take(&mut entry.pending);
        Some((entry.handler.clone(), readiness))
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn clear(&mut self, registry: Option<&Registry>) -> Vec<Rc<dyn SourceHandler>> {
        self.entries
            .drain()
            .map(|entry| {
                if let Some(registry) = registry {
                    let _ = registry.deregister(&mut mio::unix::SourceFd(&entry.fd));
                }
                entry.handler
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_tokens_are_distinct_from_io_and_reserved_tokens() {
        for (key, generation) in [(0, 0), (5, 7), (u32::MAX, GEN_MASK)] {
            let t = token(key, generation);
            assert_eq!(unpack(t), Some((key, generation)));
            assert_eq!(
                crate::io::unpack_token(t),
                None,
                "{t:?} read as a reader token"
            );
        }
        assert_eq!(unpack(crate::io::pack_token(3, 4)), None);
        assert_eq!(unpack(Token(usize::MAX)), None);
    }

    #[test]
    fn readiness_bits() {
        let r = Readiness::READABLE | Readiness::WRITE_CLOSED;
        assert!(r.is_readable() && r.is_writable() && !r.is_error());
        assert!(Readiness::EMPTY.is_empty());
        assert_eq!(format!("{:?}", Readiness::ERROR), "Readiness(ERROR)");
    }
}
