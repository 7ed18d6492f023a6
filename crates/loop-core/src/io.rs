//! I/O readiness registrations: `add_reader` / `add_writer` on raw fds.
//!
//! asyncio's readers and writers are *level-triggered*: a reader whose fd is
//! still readable after its callback runs is called again next iteration.
//! mio is *edge-triggered* (`EPOLLET`). The registry bridges the two.
//!
//! Invariants:
//! 1. One [`IoEntry`] per fd, in a `Slab`; the fd is registered with mio
//!    exactly while the entry has a reader or a writer, with the matching
//!    interest.
//! 2. Tokens carry a generation: `token = key | generation << 32`, `generation < 2^30`.
//!    A ready-queue entry or event whose generation differs from the slot's
//!    current one is stale (the fd was removed and the slot reused) and is
//!    dropped, so a new registration never sees an old fd's event.
//!    Tokens with bit 63 set are reserved for the loop's own sources and
//!    bit 62 marks edge-triggered sources ([`source`](crate::source)).
//! 3. Level-triggered emulation: after each reader/writer callback the fd is
//!    re-armed (`EPOLL_CTL_MOD`), which makes the kernel report it again at
//!    the next poll if it is still ready, and only then. A callback that reads
//!    one byte of ten is therefore called on ten consecutive iterations, and
//!    an fd that was drained is not reported again.
//! 4. While a callback runs it is taken out of its entry, so the callback may
//!    remove or replace itself; it is put back only if its registration is
//!    still the one that was running (same `version`).
//! 5. Callbacks are never dropped while the registry is borrowed: every
//!    method that removes one returns it for the caller to drop.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::panic::Location;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use slab::Slab;

use crate::event_loop::EventLoop;
use crate::ready::{Ready, ReadyQueue};

/// Anything `add_reader` and friends accept as a file descriptor: a raw fd
/// number (as asyncio takes an `int`) or a reference to any `AsFd` type
/// (sockets, pipes, `mio` sources).
///
/// The loop never owns or closes the fd.
pub trait Descriptor {
    /// The fd number.
    fn raw_fd(&self) -> RawFd;
}

impl Descriptor for RawFd {
    fn raw_fd(&self) -> RawFd {
        *self
    }
}

impl<T: AsFd + ?Sized> Descriptor for &T {
    fn raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// A reader or writer callback; called every iteration its fd is ready.
pub(crate) type IoCallback = Box<dyn FnMut(&EventLoop)>;

const GEN_MASK: u32 = 0x3fff_ffff;

/// Packs a slab key and generation into a mio token.
pub(crate) fn pack_token(key: u32, generation: u32) -> Token {
    Token(key as usize | ((generation as usize) << 32))
}

/// Splits an I/O token; `None` for the loop's reserved tokens.
pub(crate) fn unpack_token(token: Token) -> Option<(u32, u32)> {
    let raw = token.0 as u64;
    // Bit 63: the loop's reserved tokens; bit 62: edge-triggered sources.
    if raw >> 62 != 0 {
        return None;
    }
    Some((raw as u32, (raw >> 32) as u32))
}

/// The reader or the writer of one fd.
pub(crate) struct IoSide {
    pub(crate) callback: Option<IoCallback>,
    pub(crate) site: &'static Location<'static>,
    pub(crate) version: u64,
}

pub(crate) struct IoEntry {
    fd: RawFd,
    generation: u32,
    reader: Option<IoSide>,
    writer: Option<IoSide>,
}

impl IoEntry {
    fn interest(&self) -> Option<Interest> {
        match (self.reader.is_some(), self.writer.is_some()) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        }
    }

    fn side(&mut self, write: bool) -> &mut Option<IoSide> {
        if write {
            &mut self.writer
        } else {
            &mut self.reader
        }
    }
}

/// All fd registrations of one loop.
#[derive(Default)]
pub(crate) struct IoRegistry {
    entries: Slab<IoEntry>,
    by_fd: HashMap<RawFd, usize>,
    next_gen: u32,
}

impl IoRegistry {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Number of fds registered.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Sets the reader (`write == false`) or writer of `fd`. Returns the
    /// callback it replaced, for the caller to drop; on an error, the
    /// error and the callback it was given, also for the caller to drop
    /// (invariant 5: no user value is dropped here, under the table's
    /// borrow).
    pub(crate) fn add(
        &mut self,
        registry: &Registry,
        fd: RawFd,
        write: bool,
        side: IoSide,
    ) -> Result<Option<IoSide>, (io::Error, Option<IoSide>)> {
        if let Some(&key) = self.by_fd.get(&fd) {
            let entry = &mut self.entries[key];
            let old = entry.side(write).replace(side);
            let interest = entry.interest().expect("entry has the side just set");
            let token = pack_token(key as u32, entry.generation);
            match registry.reregister(&mut SourceFd(&fd), token, interest) {
                Ok(()) => Ok(old),
                // The fd was closed and its number reused without a
                // remove_*: the kernel forgot it, so register it afresh.
                Err(err) if err.raw_os_error() == Some(2) => {
                    match registry.register(&mut SourceFd(&fd), token, interest) {
                        Ok(()) => Ok(old),
                        Err(err) => {
                            let entry = &mut self.entries[key];
                            let new = std::mem::replace(entry.side(write), old);
                            Err((err, new))
                        }
                    }
                }
                Err(err) => {
                    let entry = &mut self.entries[key];
                    let new = std::mem::replace(entry.side(write), old);
                    Err((err, new))
                }
            }
        } else {
            let generation = self.next_gen;
            self.next_gen = (self.next_gen + 1) & GEN_MASK;
            let vacant = self.entries.vacant_entry();
            let key = vacant.key();
            let token = pack_token(key as u32, generation);
            let interest = if write {
                Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Err(err) = registry.register(&mut SourceFd(&fd), token, interest) {
                return Err((err, Some(side)));
            }
            let mut entry = IoEntry {
                fd,
                generation,
                reader: None,
                writer: None,
            };
            *entry.side(write) = Some(side);
            vacant.insert(entry);
            self.by_fd.insert(fd, key);
            Ok(None)
        }
    }

    /// Removes the reader or writer of `fd`; returns it if there was one.
    pub(crate) fn remove(&mut self, registry: &Registry, fd: RawFd, write: bool) -> Option<IoSide> {
        let &key = self.by_fd.get(&fd)?;
        let entry = &mut self.entries[key];
        let removed = entry.side(write).take()?;
        match entry.interest() {
            Some(interest) => {
                let token = pack_token(key as u32, entry.generation);
                if let Err(err) = registry.reregister(&mut SourceFd(&fd), token, interest) {
                    tracing::debug!(fd, %err, "re-registering fd after remove failed");
                }
            }
            None => {
                // An fd closed before remove_* is already gone from epoll.
                let _ = registry.deregister(&mut SourceFd(&fd));
                self.entries.remove(key);
                self.by_fd.remove(&fd);
            }
        }
        Some(removed)
    }

    /// Whether `fd` has a reader (`write == false`) or writer.
    pub(crate) fn has(&self, fd: RawFd, write: bool) -> bool {
        self.by_fd.get(&fd).is_some_and(|&key| {
            let entry = &self.entries[key];
            if write {
                entry.writer.is_some()
            } else {
                entry.reader.is_some()
            }
        })
    }

    /// Turns one readiness event into ready-queue entries.
    pub(crate) fn dispatch(
        &self,
        key: u32,
        generation: u32,
        readable: bool,
        writable: bool,
        ready: &mut ReadyQueue,
    ) {
        let Some(entry) = self.entries.get(key as usize) else {
            return;
        };
        if entry.generation != generation {
            return;
        }
        if readable && entry.reader.is_some() {
            ready.push(Ready::Io {
                key,
                generation,
                write: false,
            });
        }
        if writable && entry.writer.is_some() {
            ready.push(Ready::Io {
                key,
                generation,
                write: true,
            });
        }
    }

    /// Takes the callback out to run it. `None` when the entry is stale, the
    /// side was removed, or the callback is already running.
    pub(crate) fn take_callback(
        &mut self,
        key: u32,
        generation: u32,
        write: bool,
    ) -> Option<(IoCallback, u64, &'static Location<'static>)> {
        let entry = self
            .entries
            .get_mut(key as usize)
            .filter(|e| e.generation == generation)?;
        let side = entry.side(write).as_mut()?;
        let callback = side.callback.take()?;
        Some((callback, side.version, side.site))
    }

    /// Puts a callback back after it ran and re-arms the fd (invariant 3).
    /// Returns the callback if its registration was removed or replaced
    /// meanwhile, for the caller to drop.
    pub(crate) fn restore_callback(
        &mut self,
        registry: &Registry,
        key: u32,
        generation: u32,
        write: bool,
        callback: IoCallback,
        version: u64,
    ) -> Option<IoCallback> {
        let Some(entry) = self
            .entries
            .get_mut(key as usize)
            .filter(|e| e.generation == generation)
        else {
            return Some(callback);
        };
        let fd = entry.fd;
        let interest = entry.interest();
        match entry.side(write).as_mut() {
            Some(side) if side.version == version && side.callback.is_none() => {
                side.callback = Some(callback);
            }
            _ => return Some(callback),
        }
        if let Some(interest) = interest {
            if let Err(err) =
                registry.reregister(&mut SourceFd(&fd), pack_token(key, generation), interest)
            {
                tracing::trace!(fd, %err, "re-arming fd failed (closed by its callback?)");
            }
        }
        None
    }

    /// Deregisters everything; returns the entries for the caller to drop.
    pub(crate) fn clear(
        &mut self,
        registry: Option<&Registry>,
    ) -> Vec<(Option<IoSide>, Option<IoSide>)> {
        let mut out = Vec::with_capacity(self.entries.len());
        for entry in self.entries.drain() {
            if let Some(registry) = registry {
                let _ = registry.deregister(&mut SourceFd(&entry.fd));
            }
            out.push((entry.reader, entry.writer));
        }
        self.by_fd.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reserved_tokens_are_not_io() {
        for (key, generation) in [(0, 0), (7, 1), (u32::MAX, GEN_MASK)] {
            assert_eq!(
                unpack_token(pack_token(key, generation)),
                Some((key, generation)),
                "{key} {generation}"
            );
        }
        assert_eq!(unpack_token(Token(usize::MAX)), None);
        assert_eq!(unpack_token(Token(1 << 63)), None);
    }
}
