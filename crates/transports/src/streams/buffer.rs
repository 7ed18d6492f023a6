//! The [`StreamReader`](super::StreamReader)'s buffer: a queue of chunks
//! the transport receives into and reads hand out.
//!
//! Invariants:
//! 1. Every chunk in the queue is non-empty; `start` is the consumed prefix
//!    of the front chunk; `len` is the number of unread bytes.
//! 2. A receive goes into the last chunk when at least [`MIN_READ_SIZE`]
//!    of its capacity is free, otherwise into a new chunk with room for the
//!    adaptive receive size ([`next_read_size`]), or, for small messages,
//!    into the spare chunk the last read left, or without one into the
//!    caller's scratch buffer and from there copied (see
//!    [`receive`](Buffer::receive)). One receive's room is at most
//!    [`MAX_READ_CHUNK`] (asyncio's `max_size`), and no receive grows a
//!    chunk (no reallocation, no copy of what is already buffered).
//! 3. A read of everything in the front chunk hands that chunk over (no
//!    copy); other reads copy the fewest bytes they can (see
//!    [`take`](Buffer::take)). Reads join chunks only when the bytes they
//!    return span several (`readexactly`, `readuntil`, a `read` of more than
//!    the front chunk).
//! 4. What reads return depends only on the bytes, never on the chunking.
//! 5. Memory: empty chunks are kept only as replacements for chunks handed
//!    over, made when the reader next waits or receives (see
//!    [`settle`](Buffer::settle)) unless the user gives a chunk back first
//!    (see [`give_back`](Buffer::give_back)): at most [`SPARES`] for big
//!    chunks, and in small-message mode one of at most [`SMALL_READ`]
//!    (made: about twice the last message); a reader that was never read
//!    from holds only its unread bytes.

use std::collections::VecDeque;
use std::io;

/// The smallest room a receive into a chunk gets.
const MIN_READ_SIZE: usize = 2 * 1024;

/// At or below this receive size the buffer is in small-message mode: it
/// receives into the small spare a read left, or else into the caller's
/// scratch buffer and keeps an exact copy (see [`Buffer::receive`]). Only
/// a receive of more than this through the scratch buffer ends the mode.
const SMALL_READ: usize = 4 * 1024;

/// The receive size a reader starts with: small-message mode, so that a
/// server's thousand fresh connections do not each allocate a big chunk
/// for their first few bytes. The first receive of more than
/// [`SMALL_READ`] bytes switches to receiving into chunks.
const INITIAL_READ_SIZE: usize = SMALL_READ;

/// From this receive size on, a reader leaves the receive to its woken
/// read (see the reader's "Deferred receive"): at 10 × 100 KiB echoes that
/// keeps the bytes in the cache until they are sent (+8 %), at 10 × 10 KiB
/// (receive size 16 KiB) the bytes stay cached anyway and the second pass
/// through the read path costs 2–4 %.
const DEFER_READ_SIZE: usize = 64 * 1024;

/// The largest room one receive gets: the transport's own receive size.
const MAX_READ_CHUNK: usize = crate::constants::MAX_READ_SIZE;

/// A chunk handed out whole keeps at most this much spare capacity beyond
/// its length (more is given back to the allocator first).
const HANDOUT_SLACK: usize = 4 * 1024;

/// A fully consumed chunk is kept for the next receive if its capacity is
/// at most this (so a receive's room stays within [`MAX_READ_CHUNK`]).
const RECYCLE_MAX: usize = MAX_READ_CHUNK;

/// Empty chunks kept for the next receives, at most.
const SPARES: usize = 2;

/// The largest allocation glibc's per-thread cache serves (its `tcache`
/// holds chunks for requests up to 1032 bytes on 64-bit targets): a small
/// message's replacement chunk stays at or below it when the message does
/// (see [`Buffer::replace`]).
const SMALL_CACHED: usize = 1032;

/// The least room a small message's replacement chunk gets.
const SMALL_SPARE_MIN: usize = 256;

/// Past small-message mode, handing over a chunk of at least this many
/// bytes owes a replacement (see [`Buffer::replace`]).
const REPLACE_MIN: usize = 8 * 1024;

/// The next receive size: doubled after a receive that filled its room (up
/// to [`MAX_READ_CHUNK`]), halved after one that used a quarter or less
/// (down to [`MIN_READ_SIZE`]), else unchanged: big transfers get big
/// receives, small messages do not hold big chunks (Netty's adaptive
/// receive buffer, in short).
fn next_read_size(size: usize, received: usize, full: bool) -> usize {
    if full {
        (size * 2).min(MAX_READ_CHUNK)
    } else if received * 4 <= size {
        (size / 2).max(MIN_READ_SIZE)
    } else {
        size
    }
}

/// Where a receive goes: the spare capacity of a chunk (append within it),
/// or a scratch slice.
pub(crate) enum Room<'a> {
    /// Append to the vector, within its spare capacity.
    Spare(&'a mut Vec<u8>),
    /// Write at the start of the slice.
    Scratch(&'a mut [u8]),
}

/// A queue of chunks whose first one is stored inline: the common case,
/// one chunk or none, never touches (or allocates) the deque's own buffer,
/// one cache line less per message for a server with many connections.
#[derive(Default)]
struct Chunks {
    /// `None` only when the queue is empty.
    first: Option<Vec<u8>>,
    more: VecDeque<Vec<u8>>,
}

impl Chunks {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }

    fn front(&self) -> Option<&Vec<u8>> {
        self.first.as_ref()
    }

    fn front_mut(&mut self) -> Option<&mut Vec<u8>> {
        self.first.as_mut()
    }

    fn back_mut(&mut self) -> Option<&mut Vec<u8>> {
        match self.more.back_mut() {
            Some(last) => Some(last),
            None => self.first.as_mut(),
        }
    }

    fn push_back(&mut self, chunk: Vec<u8>) {
        if self.first.is_none() {
            self.first = Some(chunk);
        } else {
            self.more.push_back(chunk);
        }
    }

    fn pop_front(&mut self) -> Option<Vec<u8>> {
        let first = self.first.take();
        self.first = self.more.pop_front();
        first
    }

    /// Removes the second chunk.
    fn pop_second(&mut self) -> Option<Vec<u8>> {
        self.more.pop_front()
    }

    fn iter(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.first.iter().chain(self.more.iter())
    }
}

/// Empty chunks kept for the next receives: at most [`SPARES`], stored
/// inline, last in first out. Inline because small-message mode takes one
/// out in the transport's callback and puts its replacement back in the
/// task (made, or given back by the writer): in a heap array that would be
/// one more cache line per message, twice, for a server with many
/// connections.
#[derive(Default)]
struct Spares {
    slots: [Option<Vec<u8>>; SPARES],
    len: usize,
}

impl Spares {
    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps `chunk` if there is room (callers check first; a chunk past
    /// [`SPARES`] is dropped).
    fn push(&mut self, chunk: Vec<u8>) {
        if let Some(slot) = self.slots.get_mut(self.len) {
            *slot = Some(chunk);
            self.len += 1;
        }
    }

    fn pop(&mut self) -> Option<Vec<u8>> {
        self.len = self.len.checked_sub(1)?;
        self.slots[self.len].take()
    }

    fn clear(&mut self) {
        *self = Spares::default();
    }

    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.slots[..self.len].iter().flatten()
    }
}

#[cfg(test)]
impl std::ops::Index<usize> for Spares {
    type Output = Vec<u8>;

    fn index(&self, i: usize) -> &Vec<u8> {
        self.iter().nth(i).expect("no such spare")
    }
}

/// Unread bytes, in chunks (see the module docs).
pub(super) struct Buffer {
    chunks: Chunks,
    start: usize,
    len: usize,
    read_size: usize,
    /// Empty chunks for the next receives (at most [`SPARES`]).
    spares: Spares,
    /// The length of the last chunk a read handed over while its
    /// replacement is still owed (0: none is): the replacement is made
    /// when the reader next waits, or by the next receive, unless the
    /// chunk comes back first (see [`give_back`](Buffer::give_back)).
    owed: usize,
}

impl Default for Buffer {
    fn default() -> Self {
        Buffer {
            chunks: Chunks::default(),
            start: 0,
            len: 0,
            read_size: INITIAL_READ_SIZE,
            spares: Spares::default(),
            owed: 0,
        }
    }
}

impl Buffer {
    /// Unread bytes.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Receives are big enough ([`DEFER_READ_SIZE`]) that the reader
    /// defers them to its woken read.
    pub(super) fn receives_big(&self) -> bool {
        self.read_size >= DEFER_READ_SIZE
    }

    /// The room the next receive into a new chunk gets.
    #[cfg(test)]
    pub(super) fn read_size(&self) -> usize {
        self.read_size
    }

    /// Chunks in the queue.
    #[cfg(test)]
    pub(super) fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Drops the front chunk's consumed prefix once it is at least half of
    /// the chunk (moving at most as many bytes as were consumed).
    fn compact_front(&mut self) {
        if let Some(front) = self.chunks.front_mut() {
            if self.start > 0 && self.start * 2 >= front.len() {
                front.drain(..self.start);
                self.start = 0;
            }
        }
    }

    fn recycle(&mut self, mut chunk: Vec<u8>) {
        if self.read_size > SMALL_READ
            && chunk.capacity() <= RECYCLE_MAX
            && self.spares.len() < SPARES
        {
            chunk.clear();
            self.spares.push(chunk);
        }
    }

    fn new_chunk(&mut self, capacity: usize) -> Vec<u8> {
        match self.spares.pop() {
            Some(chunk) if chunk.capacity() >= capacity => chunk,
            // Too small for the receive size now: let it go.
            _ => Vec::with_capacity(capacity),
        }
    }

    /// Makes the replacement owed for the last chunk a read handed over, if
    /// one is owed and was not given back. Called in the reading task when
    /// the reader is about to wait for data, when the writer's `drain` is
    /// about to suspend, and by the next hand-over; a receive that finds
    /// one still owed calls it first (a task that did none of these).
    ///
    /// In the task, after the reader has (most likely) dropped the chunk it
    /// was handed, the allocator hands that very block out again, the
    /// hottest one it has. A replacement allocated in the transport's
    /// callback instead, an iteration before the reader drops the chunk it
    /// holds, makes the heap swing by a chunk per connection per iteration:
    /// with big chunks glibc trims and regrows it (`brk`), faulting the
    /// pages in again (measured: 2–3× the CPU per 100 KiB echo); with small
    /// ones hundreds were alive at once at 1000 connections, past the
    /// allocator's per-size cache (cachegrind: ~370 instructions and a dozen
    /// cache misses per 1 KiB message in `malloc`).
    #[inline]
    pub(super) fn settle(&mut self) {
        if self.owed > 0 {
            let handed = std::mem::take(&mut self.owed);
            self.replace(handed);
        }
    }

    /// A chunk the reader's user is done with (a [`StreamWriter::write`]
    /// of an owned vector, once its bytes are sent or buffered): kept as
    /// the replacement for the chunk a read handed over since the last
    /// [`settle`](Buffer::settle), if there is one and `chunk` fits the
    /// receive it would get (in small-message mode a room
    /// of [`SMALL_SPARE_MIN`]..=[`SMALL_READ`] bytes and more than the chunk
    /// handed over held, past it the receive size up to
    /// [`MAX_READ_CHUNK`], but never once receives are big enough to be
    /// deferred to the read, see [`DEFER_READ_SIZE`]); otherwise dropped.
    /// An echo (anything writing owned vectors to the connection it reads
    /// from) then receives every message into the chunk the last one came
    /// in, with no allocation, as a loop reading into one buffer would.
    ///
    /// [`StreamWriter::write`]: super::StreamWriter::write
    #[inline]
    pub(super) fn give_back(&mut self, mut chunk: Vec<u8>) {
        // With big receives (made by the woken read, right before the bytes
        // are used) the allocator's replacement measured faster: the
        // receive's copy into a chunk given back cost half as much again
        // (perf at 10 x 100 KiB: `_copy_to_iter` 20 -> 30 % of the CPU,
        // throughput 1-29 % lower), the block freed last being the one
        // still in the cache.
        if self.owed == 0 || self.receives_big() {
            return;
        }
        let cap = chunk.capacity();
        let fits = if self.read_size <= SMALL_READ {
            // More room than the last message took: the next one of its
            // size arrives whole without filling the room (a full receive
            // makes the transport receive again).
            self.spares.is_empty()
                && cap > self.owed
                && (SMALL_SPARE_MIN..=SMALL_READ).contains(&cap)
        } else {
            self.spares.len() < SPARES && (self.read_size..=MAX_READ_CHUNK).contains(&cap)
        };
        if fits {
            chunk.clear();
            self.spares.push(chunk);
            self.owed = 0;
        }
    }

    /// The replacement for a chunk of `handed` bytes (see
    /// [`settle`](Buffer::settle)): in small-message mode one if there is
    /// no spare (a reader keeps at most one there); past it one of the
    /// receive size for a chunk of at least [`REPLACE_MIN`] bytes.
    ///
    /// The small replacement has room for twice the chunk handed over, but
    /// no more than [`SMALL_CACHED`] when the chunk fitted under it: the
    /// next message, likely the same size, still arrives whole (the receive
    /// does not fill its room, so the transport does not read again), and
    /// the allocation stays within the allocator's per-size cache.
    #[inline(never)]
    fn replace(&mut self, handed: usize) {
        if self.read_size <= SMALL_READ {
            if self.spares.is_empty() {
                let cap = if handed < SMALL_CACHED {
                    (2 * handed).clamp(SMALL_SPARE_MIN, SMALL_CACHED)
                } else {
                    (2 * handed).min(SMALL_READ)
                };
                self.spares.push(Vec::with_capacity(cap));
            }
        } else if handed >= REPLACE_MIN && self.spares.len() < SPARES {
            self.spares.push(Vec::with_capacity(self.read_size));
        }
    }

    /// Appends a copy of `bytes` (`feed_data`).
    pub(super) fn extend(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.chunks.len() == 1 {
            self.compact_front();
        }
        match self.chunks.back_mut() {
            Some(last) => last.extend_from_slice(bytes),
            None => {
                let mut chunk = self.new_chunk(bytes.len());
                chunk.extend_from_slice(bytes);
                self.chunks.push_back(chunk);
            }
        }
        self.len += bytes.len();
    }

    /// Appends a copy of `bytes` to the last chunk if it has the room, else
    /// as a new chunk of exactly that size (never grows a chunk).
    fn append_copy(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match self.chunks.back_mut() {
            Some(last) if last.capacity() - last.len() >= bytes.len() => {
                last.extend_from_slice(bytes);
            }
            _ => self.chunks.push_back(bytes.to_vec()),
        }
        self.len += bytes.len();
    }

    /// Receives with `recv`, which fills the [`Room`] it is given and
    /// returns how many bytes it wrote (0: end of stream). Returns that
    /// count and whether the receive filled its room. On an error or 0
    /// bytes the unread bytes are unchanged.
    ///
    /// Where the bytes go, in order of preference:
    ///
    /// 1. the last chunk, if it has room (at least [`MIN_READ_SIZE`], at
    ///    most [`MAX_READ_CHUNK`]);
    /// 2. small-message mode (the receive size is [`SMALL_READ`] or less):
    ///    the spare chunk a read's hand-over left (made by
    ///    [`settle`](Buffer::settle), first thing here if still owed, or
    ///    given back, see [`give_back`](Buffer::give_back)), whatever its
    ///    room; without one (a
    ///    reader's first receives, or bytes nobody has read yet) `scratch`
    ///    (the loop's shared read buffer, hot in the cache), then a copy
    ///    into the last chunk or a new chunk of exactly the bytes received,
    ///    so a reader that is not being read holds no more than its bytes.
    ///    A receive of more than `SMALL_READ` bytes ends the mode;
    /// 3. a new chunk with room for the receive size (past small-message
    ///    mode, a spare if there is one).
    ///
    /// # Errors
    ///
    /// `recv`'s error.
    pub(super) fn receive(
        &mut self,
        scratch: &mut [u8],
        recv: impl FnOnce(Room<'_>) -> io::Result<usize>,
    ) -> io::Result<(usize, bool)> {
        self.settle();
        if self.chunks.len() == 1 {
            self.compact_front();
        }
        if let Some(last) = self.chunks.back_mut() {
            let room = last.capacity() - last.len();
            // A chunk grown by joins may have more room than one receive
            // may take (invariant 2): then a new chunk.
            if (MIN_READ_SIZE..=MAX_READ_CHUNK).contains(&room) {
                let n = recv(Room::Spare(last))?;
                self.len += n;
                return Ok((n, n == room));
            }
        }
        let size = self.read_size;
        if size <= SMALL_READ {
            if let Some(spare) = self.spares.pop() {
                return self.receive_into_spare(spare, recv);
            }
            if !scratch.is_empty() {
                let cap = scratch.len().min(MAX_READ_CHUNK);
                let scratch = &mut scratch[..cap];
                let n = recv(Room::Scratch(scratch))?;
                let full = n == scratch.len();
                self.append_copy(&scratch[..n]);
                if n > SMALL_READ {
                    self.read_size = n.next_power_of_two().min(MAX_READ_CHUNK);
                }
                return Ok((n, full));
            }
        }
        let mut chunk = self.new_chunk(size);
        let room = chunk.capacity();
        match recv(Room::Spare(&mut chunk)) {
            Ok(n) => {
                let full = n == room;
                self.read_size = next_read_size(size, n, full);
                if self.read_size <= SMALL_READ {
                    // Big spares are not for small-message mode.
                    self.spares.clear();
                }
                if n > 0 {
                    self.len += n;
                    self.chunks.push_back(chunk);
                } else {
                    self.recycle(chunk);
                }
                Ok((n, full))
            }
            Err(err) => {
                self.recycle(chunk);
                Err(err)
            }
        }
    }

    /// Small-message mode's receive into the spare a read left: the bytes
    /// become its last chunk; on EOF or an error the spare is kept. A full
    /// spare changes no size: the transport reads again, through scratch,
    /// where a receive of more than `SMALL_READ` ends the mode.
    fn receive_into_spare(
        &mut self,
        mut spare: Vec<u8>,
        recv: impl FnOnce(Room<'_>) -> io::Result<usize>,
    ) -> io::Result<(usize, bool)> {
        let room = spare.capacity();
        match recv(Room::Spare(&mut spare)) {
            Ok(n) if n > 0 => {
                self.len += n;
                self.chunks.push_back(spare);
                Ok((n, n == room))
            }
            other => {
                self.spares.push(spare);
                other.map(|n| (n, false))
            }
        }
    }

    /// Joins chunks into the front one until it holds at least `n` unread
    /// bytes (or everything). Inline for the common case, one chunk or
    /// none, where there is nothing to join (every read of a stream echo).
    #[inline]
    fn gather(&mut self, n: usize) {
        if self.chunks.len() > 1 {
            self.join_front(n);
        }
    }

    /// [`gather`](Buffer::gather)'s joining, with two chunks or more.
    fn join_front(&mut self, n: usize) {
        while self.chunks.len() > 1 {
            let start = self.start;
            let Some(front) = self.chunks.front() else {
                return;
            };
            if front.len() - start >= n {
                return;
            }
            let Some(next) = self.chunks.pop_second() else {
                return;
            };
            self.start = 0;
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            if start > 0 {
                front.drain(..start);
            }
            front.extend_from_slice(&next);
            self.recycle(next);
        }
    }

    /// The unread bytes as one slice (joins the chunks first). The tests
    /// compare it with their byte-queue model.
    #[cfg(test)]
    pub(super) fn make_contiguous(&mut self) -> &[u8] {
        self.gather(self.len);
        match self.chunks.front() {
            Some(front) => &front[self.start..],
            None => &[],
        }
    }

    /// The unread byte at `index`.
    pub(super) fn byte_at(&self, mut index: usize) -> Option<u8> {
        let mut offset = self.start;
        for chunk in self.chunks.iter() {
            let here = chunk.len() - offset;
            if index < here {
                return Some(chunk[offset + index]);
            }
            index -= here;
            offset = 0;
        }
        None
    }

    /// Position of `needle` in the unread bytes, searching from `from`.
    /// Searches the front chunk and joins the next chunk into it only
    /// while no match is found, so a separator already in the front chunk
    /// costs no copy (invariant 3); a match split across chunks is found
    /// once the join reaches it.
    pub(super) fn find(&mut self, needle: &[u8], from: usize) -> Option<usize> {
        if needle.is_empty() || from > self.len {
            return None;
        }
        // Start positions below `scanned` were checked with a whole window.
        let mut scanned = from;
        loop {
            let hay = match self.chunks.front() {
                Some(front) => &front[self.start..],
                None => return None,
            };
            if let Some(p) = hay
                .get(scanned..)
                .and_then(|rest| rest.windows(needle.len()).position(|w| w == needle))
            {
                return Some(p + scanned);
            }
            let searched = hay.len();
            if self.chunks.len() == 1 {
                return None;
            }
            scanned = scanned.max((searched + 1).saturating_sub(needle.len()));
            self.gather(searched + 1);
        }
    }

    /// Removes the first `n` unread bytes (at most all) and returns them,
    /// copying as little as it can:
    ///
    /// * the whole front chunk, unconsumed: the chunk itself is handed over
    ///   (no copy; a big spare capacity is trimmed first);
    /// * a prefix of an unconsumed front chunk longer than the rest: the
    ///   rest is moved to a new chunk and the old one, cut to `n`, is handed
    ///   over (copies the shorter part);
    /// * otherwise the `n` bytes are copied out;
    ///
    /// after joining chunks if the `n` bytes span several.
    pub(super) fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.len);
        if n == 0 {
            return Vec::new();
        }
        self.gather(n);
        let Some(front) = self.chunks.front_mut() else {
            return Vec::new();
        };
        let end = self.start + n;
        self.len -= n;
        if self.start == 0 {
            let rest = front.len() - end;
            if rest == 0 {
                let out = self.chunks.pop_front().unwrap_or_default();
                return self.hand_over(out);
            }
            if rest < n {
                let mut kept = Vec::with_capacity(rest);
                kept.extend_from_slice(&front[end..]);
                let mut out = std::mem::replace(front, kept);
                out.truncate(n);
                return self.hand_over(out);
            }
        }
        let out = front[self.start..end].to_vec();
        self.start = end;
        if end == front.len() {
            self.start = 0;
            if let Some(chunk) = self.chunks.pop_front() {
                self.recycle(chunk);
            }
        }
        out
    }

    /// Hands a received chunk over as a read's result: a replacement chunk
    /// is owed for the next receive (see [`settle`](Buffer::settle)), and a
    /// big spare capacity is trimmed.
    fn hand_over(&mut self, mut out: Vec<u8>) -> Vec<u8> {
        // Reads handing chunks over back to back (no wait between): each
        // one's replacement, in the task.
        self.settle();
        self.owed = out.len();
        if out.capacity() > 2 * out.len() + HANDOUT_SLACK {
            out.shrink_to_fit();
        }
        out
    }

    /// Removes all unread bytes and returns them.
    pub(super) fn take_all(&mut self) -> Vec<u8> {
        self.take(self.len)
    }

    /// Drops the first `n` unread bytes (at most all).
    pub(super) fn consume(&mut self, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                return;
            };
            let here = front.len() - self.start;
            if n < here {
                self.start += n;
                return;
            }
            n -= here;
            self.start = 0;
            if let Some(chunk) = self.chunks.pop_front() {
                self.recycle(chunk);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The module's invariants 1, 2 (as far as the state shows) and 5.
    fn check_invariants(b: &Buffer) {
        let mut unread = 0;
        for (i, chunk) in b.chunks.iter().enumerate() {
            assert!(!chunk.is_empty(), "chunk {i} is empty");
            unread += chunk.len() - if i == 0 { b.start } else { 0 };
        }
        assert_eq!(unread, b.len, "len counts the unread bytes");
        assert!(b.start == 0 || b.chunks.len() > 0);
        if b.read_size <= SMALL_READ {
            assert!(b.spares.len() <= 1, "small mode keeps one spare at most");
            for spare in b.spares.iter() {
                assert!(spare.capacity() <= SMALL_READ, "{}", spare.capacity());
            }
        } else {
            assert!(b.spares.len() <= SPARES);
        }
        for spare in b.spares.iter() {
            assert!(spare.is_empty() && spare.capacity() <= MAX_READ_CHUNK);
        }
    }

    /// A `recv` that writes as much of `data` as its room takes, and checks
    /// that room is within one receive's limit.
    fn feeder(data: &[u8]) -> impl FnOnce(Room<'_>) -> io::Result<usize> + '_ {
        move |room: Room<'_>| match room {
            Room::Spare(buf) => {
                assert!(
                    buf.capacity() - buf.len() <= MAX_READ_CHUNK,
                    "room past the limit"
                );
                let n = (buf.capacity() - buf.len()).min(data.len());
                buf.extend_from_slice(&data[..n]);
                Ok(n)
            }
            Room::Scratch(slice) => {
                assert!(slice.len() <= MAX_READ_CHUNK, "room past the limit");
                let n = slice.len().min(data.len());
                slice[..n].copy_from_slice(&data[..n]);
                Ok(n)
            }
        }
    }

    /// No scratch: every receive goes into a chunk.
    fn no_scratch() -> &'static mut [u8] {
        &mut []
    }

    /// A buffer past small-message mode, receiving into chunks of `size`.
    fn direct(size: usize) -> Buffer {
        Buffer {
            read_size: size,
            ..Buffer::default()
        }
    }

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn receive_then_take_everything_hands_the_chunk_over() {
        let mut b = direct(16 * 1024);
        let data = bytes(10_000, 1);
        assert_eq!(
            b.receive(no_scratch(), feeder(&data)).unwrap(),
            (10_000, false)
        );
        let ptr = b.chunks.front().unwrap().as_ptr();
        let out = b.take(20_000);
        assert_eq!(out, data);
        assert_eq!(out.as_ptr(), ptr, "the received chunk itself is returned");
        assert_eq!(b.len(), 0);
        assert_eq!(b.chunk_count(), 0);
    }

    #[test]
    fn handed_over_chunk_is_trimmed_when_mostly_empty() {
        let mut b = direct(64 * 1024);
        b.receive(no_scratch(), feeder(&bytes(100, 2))).unwrap();
        let out = b.take_all();
        assert_eq!(out.len(), 100);
        assert!(
            out.capacity() <= 2 * 100 + HANDOUT_SLACK,
            "capacity {}",
            out.capacity()
        );
    }

    #[test]
    fn full_receive_doubles_and_small_receive_halves_the_read_size() {
        let mut b = Buffer::default();
        assert_eq!(b.read_size(), INITIAL_READ_SIZE);
        let big = bytes(8 * MAX_READ_CHUNK, 3);
        let (n, full) = b.receive(no_scratch(), feeder(&big)).unwrap();
        assert_eq!((n, full), (INITIAL_READ_SIZE, true));
        assert_eq!(b.read_size(), 2 * INITIAL_READ_SIZE);
        // Fill up to the cap; receives are deferred from DEFER_READ_SIZE on.
        let mut fed = n;
        for _ in 0..6 {
            assert_eq!(b.receives_big(), b.read_size() >= DEFER_READ_SIZE);
            let (n, _) = b.receive(no_scratch(), feeder(&big[fed..])).unwrap();
            fed += n;
        }
        assert_eq!(b.read_size(), MAX_READ_CHUNK);
        assert!(b.receives_big());
        let got = b.take_all();
        assert_eq!(got, big[..fed]);
        // Small receives shrink it again, into small-message mode.
        for _ in 0..16 {
            b.receive(no_scratch(), feeder(b"x")).unwrap();
            b.take_all();
        }
        assert!(b.read_size() <= SMALL_READ);
        assert!(b.read_size() >= MIN_READ_SIZE);
        assert!(!b.receives_big());
        b.settle();
        assert_eq!(b.spares.len(), 1);
        assert_eq!(b.spares[0].capacity(), SMALL_SPARE_MIN);
    }

    #[test]
    fn receive_appends_to_the_last_chunk_while_it_has_room() {
        let mut b = Buffer::default();
        b.receive(no_scratch(), feeder(&bytes(100, 4))).unwrap();
        b.receive(no_scratch(), feeder(&bytes(200, 5))).unwrap();
        assert_eq!(b.chunk_count(), 1);
        assert_eq!(b.len(), 300);
        let mut want = bytes(100, 4);
        want.extend(bytes(200, 5));
        assert_eq!(b.take_all(), want);
    }

    #[test]
    fn a_full_chunk_makes_the_next_receive_start_a_new_one() {
        let mut b = Buffer::default();
        let data = bytes(INITIAL_READ_SIZE + 500, 6);
        let (n, full) = b.receive(no_scratch(), feeder(&data)).unwrap();
        assert!(full);
        let (m, _) = b.receive(no_scratch(), feeder(&data[n..])).unwrap();
        assert_eq!(m, 500);
        assert_eq!(b.chunk_count(), 2);
        // A read of exactly the first chunk hands it over; then the second.
        let first = b.take(n);
        assert_eq!(first, data[..n]);
        assert_eq!(b.take(10_000), data[n..]);
    }

    #[test]
    fn take_across_chunks_joins_them() {
        let mut b = Buffer::default();
        let data = bytes(INITIAL_READ_SIZE + 3000, 7);
        let (n, _) = b.receive(no_scratch(), feeder(&data)).unwrap();
        b.receive(no_scratch(), feeder(&data[n..])).unwrap();
        assert_eq!(b.chunk_count(), 2);
        let out = b.take(n + 1000);
        assert_eq!(out, data[..n + 1000]);
        assert_eq!(b.len(), 2000);
        assert_eq!(b.take_all(), data[n + 1000..]);
    }

    #[test]
    fn take_of_a_long_prefix_moves_the_short_rest() {
        let mut b = direct(16 * 1024);
        let data = bytes(10_000, 8);
        b.receive(no_scratch(), feeder(&data)).unwrap();
        let ptr = b.chunks.front().unwrap().as_ptr();
        let out = b.take(9_000);
        assert_eq!(out, data[..9_000]);
        assert_eq!(out.as_ptr(), ptr, "the long prefix keeps its allocation");
        assert_eq!(b.len(), 1_000);
        // The rest is kept exactly; the next receive gets a chunk of its own.
        b.receive(no_scratch(), feeder(&bytes(50, 9))).unwrap();
        assert_eq!(b.chunk_count(), 2);
        let mut want = data[9_000..].to_vec();
        want.extend(bytes(50, 9));
        assert_eq!(b.take_all(), want);
    }

    #[test]
    fn take_of_a_short_prefix_copies_it_out() {
        let mut b = Buffer::default();
        let data = bytes(1000, 10);
        b.receive(no_scratch(), feeder(&data)).unwrap();
        assert_eq!(b.take(100), data[..100]);
        assert_eq!(b.take(100), data[100..200]);
        assert_eq!(b.len(), 800);
        assert_eq!(b.take_all(), data[200..]);
    }

    #[test]
    fn consume_and_byte_at_walk_the_chunks() {
        let mut b = Buffer::default();
        let data = bytes(INITIAL_READ_SIZE + 10, 11);
        let (n, _) = b.receive(no_scratch(), feeder(&data)).unwrap();
        b.receive(no_scratch(), feeder(&data[n..])).unwrap();
        assert_eq!(b.byte_at(n + 3), Some(data[n + 3]));
        assert_eq!(b.byte_at(data.len()), None);
        b.consume(n - 2);
        assert_eq!(b.byte_at(0), Some(data[n - 2]));
        assert_eq!(b.byte_at(4), Some(data[n + 2]));
        b.consume(5);
        assert_eq!(b.len(), 7);
        assert_eq!(b.take_all(), data[n + 3..]);
        b.consume(1);
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn find_sees_a_separator_split_across_chunks() {
        let mut b = Buffer::default();
        let mut data = vec![b'a'; INITIAL_READ_SIZE - 1];
        data.extend_from_slice(b"\r\nrest");
        let (n, _) = b.receive(no_scratch(), feeder(&data)).unwrap();
        b.receive(no_scratch(), feeder(&data[n..])).unwrap();
        assert_eq!(b.find(b"\r\n", 0), Some(INITIAL_READ_SIZE - 1));
        assert_eq!(b.find(b"\r\n", INITIAL_READ_SIZE), None);
        assert_eq!(b.make_contiguous(), &data[..]);
    }

    #[test]
    fn errors_and_eof_leave_the_bytes_unchanged() {
        let mut b = Buffer::default();
        b.receive(no_scratch(), feeder(b"abc")).unwrap();
        let err = b
            .receive(no_scratch(), |_| {
                Err(io::Error::from(io::ErrorKind::WouldBlock))
            })
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(b.receive(no_scratch(), |_| Ok(0)).unwrap(), (0, false));
        assert_eq!(b.len(), 3);
        assert_eq!(b.take_all(), b"abc");
        // Also on an empty buffer (a new chunk was tried and recycled).
        assert_eq!(b.receive(no_scratch(), |_| Ok(0)).unwrap(), (0, false));
        assert_eq!(b.len(), 0);
        assert_eq!(b.chunk_count(), 0);
    }

    #[test]
    fn errors_and_eof_in_the_small_spare_keep_the_spare_and_the_bytes() {
        let mut b = Buffer::default();
        let mut scratch = vec![0u8; 8192];
        b.receive(&mut scratch, feeder(&bytes(500, 1))).unwrap();
        b.take_all();
        b.settle();
        assert_eq!(b.spares.len(), 1, "the read left a spare");
        let cap = b.spares[0].capacity();
        b.receive(&mut scratch, feeder(b"abc")).unwrap();
        // Read, then the spare path's failures.
        assert_eq!(b.take_all(), b"abc");
        b.settle();
        assert_eq!(b.spares.len(), 1);
        let err = b
            .receive(&mut scratch, |_| {
                Err(io::Error::from(io::ErrorKind::ConnectionReset))
            })
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(b.receive(&mut scratch, |_| Ok(0)).unwrap(), (0, false));
        assert_eq!(b.len(), 0);
        assert_eq!(b.chunk_count(), 0);
        assert_eq!(b.spares.len(), 1, "the spare is kept for the next receive");
        assert!(b.spares[0].capacity() >= cap.min(SMALL_SPARE_MIN));
        check_invariants(&b);
    }

    #[test]
    fn small_messages_of_varying_sizes_stay_in_small_mode() {
        let mut b = Buffer::default();
        let mut scratch = vec![0u8; 64 * 1024];
        // A spare sized for a small message, then a bigger one, an exact
        // fit, tiny ones and one just past the cache limit: all arrive
        // whole (a full spare's rest comes through scratch), and none ends
        // small-message mode.
        for (i, size) in [100, 300, 3000, 1031, 1032, 1, 2, 1033, 4096, 700]
            .iter()
            .enumerate()
        {
            let msg = bytes(*size, i as u8);
            let mut got = 0;
            for _ in 0..4 {
                if got == msg.len() {
                    break;
                }
                let (n, _) = b.receive(&mut scratch, feeder(&msg[got..])).unwrap();
                got += n;
                check_invariants(&b);
            }
            assert_eq!(got, msg.len(), "message {i}");
            assert_eq!(b.take_all(), msg, "message {i}");
            assert!(
                b.read_size() <= SMALL_READ,
                "message {i} of {size} B ended the mode"
            );
            check_invariants(&b);
        }
        // The spare after a message is twice it: at most the cache limit
        // below the limit, at most `SMALL_READ` at or past it.
        for (size, spare) in [
            (2000, 4000),
            (1500, 3000),
            (600, SMALL_CACHED),
            (3000, SMALL_READ),
            (100, SMALL_SPARE_MIN),
        ] {
            let msg = bytes(size, 9);
            let mut got = 0;
            for _ in 0..4 {
                if got == size {
                    break;
                }
                got += b.receive(&mut scratch, feeder(&msg[got..])).unwrap().0;
            }
            assert_eq!(b.take_all(), msg);
            b.settle();
            assert_eq!(b.spares[0].capacity(), spare, "after {size} B");
        }
    }

    #[test]
    fn extend_and_receive_mix() {
        let mut b = Buffer::default();
        b.extend(b"hello ");
        b.receive(no_scratch(), feeder(b"world")).unwrap();
        b.extend(b"!");
        assert_eq!(b.len(), 12);
        assert_eq!(b.take(3), b"hel");
        assert_eq!(b.take_all(), b"lo world!");
        b.extend(b"");
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn handing_over_a_big_chunk_owes_its_replacement() {
        let mut b = direct(16 * 1024);
        let data = bytes(REPLACE_MIN, 12);
        b.receive(no_scratch(), feeder(&data)).unwrap();
        assert_eq!(b.take_all(), data);
        assert!(b.spares.is_empty(), "owed, not made yet");
        b.settle();
        assert_eq!(b.spares.len(), 1, "the reader's wait made it");
        let spare = b.spares[0].as_ptr();
        b.receive(no_scratch(), feeder(b"next")).unwrap();
        assert!(b.spares.is_empty(), "the receive used the replacement");
        assert_eq!(b.chunks.front().unwrap().as_ptr(), spare);
        assert_eq!(b.take_all(), b"next");
        // A small chunk handed over gets none (the allocator caches those).
        b.settle();
        assert!(b.spares.is_empty());
        // Never more than SPARES.
        for i in 0..4 {
            b.receive(no_scratch(), feeder(&bytes(REPLACE_MIN, i)))
                .unwrap();
            b.receive(no_scratch(), feeder(&bytes(REPLACE_MIN, i)))
                .unwrap();
            while b.len() > 0 {
                b.take(REPLACE_MIN);
            }
            b.settle();
            assert!(b.spares.len() <= SPARES);
        }
        assert_eq!(b.spares.len(), SPARES, "each hand-over made one");
    }

    #[test]
    fn a_consumed_chunk_is_recycled_for_the_next_receive() {
        let mut b = Buffer::default();
        b.receive(no_scratch(), feeder(&bytes(1000, 13))).unwrap();
        let ptr = b.chunks.front().unwrap().as_ptr();
        b.consume(1000);
        assert_eq!(b.chunk_count(), 0);
        // The read size halved; the recycled chunk is big enough for it.
        b.receive(no_scratch(), feeder(b"again")).unwrap();
        assert_eq!(b.chunks.front().unwrap().as_ptr(), ptr);
        assert_eq!(b.take_all(), b"again");
    }

    /// The buffer against a plain byte queue: random receives (of random
    /// sizes, sometimes interleaved with `extend`), takes, consumes and
    /// joins must always agree (invariant 4).
    #[test]
    fn matches_a_byte_queue_model() {
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        for case in 0..64u8 {
            let mut b = Buffer::default();
            let mut model: VecDeque<u8> = VecDeque::new();
            let mut counter = case;
            for _ in 0..40 {
                match next(6) {
                    0 | 1 => {
                        let size = [1, 100, 3000, 70_000, 300_000][next(5)];
                        let data: Vec<u8> = (0..size)
                            .map(|_| {
                                counter = counter.wrapping_add(1);
                                counter
                            })
                            .collect();
                        // Sometimes with a scratch buffer (small-message
                        // mode when the receive size is small).
                        let mut scratch = vec![0; [0, 64, 8192][next(3)]];
                        let (n, _) = b.receive(&mut scratch, feeder(&data)).unwrap();
                        assert!(n > 0 && n <= size);
                        model.extend(&data[..n]);
                    }
                    2 => {
                        let size = next(5000);
                        let data: Vec<u8> = (0..size).map(|i| i as u8).collect();
                        b.extend(&data);
                        model.extend(&data);
                    }
                    3 => {
                        let n = next(b.len().max(1) * 2);
                        let got = b.take(n);
                        let want: Vec<u8> = model.drain(..n.min(model.len())).collect();
                        assert_eq!(got, want, "case {case}: take({n})");
                    }
                    4 => {
                        let n = next(b.len().max(1) + 1);
                        b.consume(n);
                        model.drain(..n.min(model.len()));
                    }
                    _ => {
                        if b.len() > 0 {
                            let i = next(b.len());
                            assert_eq!(b.byte_at(i), model.get(i).copied());
                        }
                        if next(4) == 0 {
                            let joined = b.make_contiguous().to_vec();
                            assert_eq!(joined, model.iter().copied().collect::<Vec<u8>>());
                        }
                    }
                }
                check_invariants(&b);
                assert_eq!(b.len(), model.len(), "case {case}");
            }
            assert_eq!(b.take_all(), model.iter().copied().collect::<Vec<u8>>());
        }
    }

    #[test]
    fn small_messages_go_through_scratch_until_a_read_leaves_a_spare() {
        let mut b = Buffer::default();
        let mut scratch = vec![0u8; 64 * 1024];
        let msg = bytes(1000, 14);
        // A fresh reader: through the scratch buffer, kept as an exact copy.
        let (n, full) = b.receive(&mut scratch, feeder(&msg)).unwrap();
        assert_eq!((n, full), (1000, false));
        assert_eq!(scratch[..1000], msg[..], "received into the scratch buffer");
        assert_eq!(b.chunks.front().unwrap().capacity(), 1000, "an exact copy");
        // Bytes nobody read yet: still through scratch (no spare to use).
        b.receive(&mut scratch, feeder(b"tail")).unwrap();
        let mut want = msg.clone();
        want.extend_from_slice(b"tail");
        assert_eq!(b.take_all(), want);
        // That read handed the chunk over and owes a spare of the receive
        // size, made when the reader waits; the next receives go straight
        // into it.
        b.settle();
        assert_eq!(b.spares.len(), 1);
        for round in 0..8 {
            scratch[..1000].fill(0);
            let (n, _) = b.receive(&mut scratch, feeder(&msg)).unwrap();
            assert_eq!(n, 1000);
            assert!(
                scratch[..1000].iter().all(|&x| x == 0),
                "round {round}: not via scratch"
            );
            assert!(
                b.spares.is_empty(),
                "round {round}: the receive took the spare"
            );
            assert_eq!(b.take_all(), msg);
            b.settle();
            assert_eq!(b.spares.len(), 1, "round {round}: the read left a new one");
        }
        // The spare has room for the next message whole, within the
        // allocator's small-size cache; the mode goes on.
        assert!(b.read_size() <= SMALL_READ);
        assert_eq!(b.spares[0].capacity(), SMALL_CACHED);
        // A big message ends small-message mode: the spare fills, the
        // transport reads again at once (as after any full receive), and
        // that receive, through scratch, brings more than `SMALL_READ`.
        let big = bytes(10_000, 15);
        let mut fed = 0;
        for _ in 0..8 {
            let (n, full) = b.receive(&mut scratch, feeder(&big[fed..])).unwrap();
            fed += n;
            if !full || fed == big.len() {
                break;
            }
        }
        assert_eq!(fed, big.len());
        assert_eq!(b.take_all(), big);
        assert!(b.read_size() > SMALL_READ, "{}", b.read_size());
        assert!(b.spares.len() <= SPARES);
    }

    #[test]
    fn small_mode_caps_a_scratch_receive_at_the_chunk_limit() {
        let mut b = Buffer::default();
        for _ in 0..8 {
            b.receive(no_scratch(), feeder(b"x")).unwrap();
            b.take_all();
        }
        assert!(b.read_size() <= SMALL_READ);
        // The scratch path is the one without a spare (see
        // `small_messages_go_through_scratch_until_a_read_leaves_a_spare`).
        b.settle();
        b.spares.clear();
        let mut scratch = vec![0u8; 2 * MAX_READ_CHUNK];
        let data = bytes(2 * MAX_READ_CHUNK, 16);
        let (n, full) = b.receive(&mut scratch, feeder(&data)).unwrap();
        assert_eq!((n, full), (MAX_READ_CHUNK, true));
        assert_eq!(b.read_size(), MAX_READ_CHUNK);
        assert_eq!(b.take_all(), data[..MAX_READ_CHUNK]);
    }

    #[test]
    fn a_hand_over_owes_its_replacement_until_settled() {
        let mut b = Buffer::default();
        let mut scratch = vec![0u8; 8192];
        b.receive(&mut scratch, feeder(&bytes(300, 2))).unwrap();
        assert_eq!(b.take_all(), bytes(300, 2));
        assert!(b.spares.is_empty(), "not made by the read itself");
        // A receive before the reader waits makes it first and uses it.
        b.receive(&mut scratch, feeder(&bytes(300, 3))).unwrap();
        assert_eq!(b.chunks.front().unwrap().capacity(), 600, "twice the last");
        assert_eq!(b.take_all(), bytes(300, 3));
        b.settle();
        assert_eq!(b.spares.len(), 1);
        // Settled once: a second settle makes nothing more.
        b.settle();
        assert_eq!(b.spares.len(), 1);
        check_invariants(&b);
    }

    #[test]
    fn a_chunk_given_back_is_the_next_receives_room() {
        let mut b = Buffer::default();
        let mut scratch = vec![0u8; 8192];
        let msg = bytes(1000, 5);
        // The first message comes through scratch, as an exact copy: given
        // back, it would be filled by the next message of its size (and a
        // full receive makes the transport read again), so it is dropped
        // and the owed replacement is made.
        b.receive(&mut scratch, feeder(&msg)).unwrap();
        let first = b.take_all();
        assert_eq!(first.capacity(), 1000);
        b.give_back(first);
        assert!(
            b.spares.is_empty(),
            "no more room than the message: dropped"
        );
        b.settle();
        assert_eq!(b.spares[0].capacity(), SMALL_CACHED);
        // From then on each chunk read and given back is the next room.
        for round in 0..4 {
            let (n, full) = b.receive(&mut scratch, feeder(&msg)).unwrap();
            assert_eq!((n, full), (1000, false), "round {round}");
            let chunk = b.take_all();
            assert_eq!(chunk, msg);
            let ptr = chunk.as_ptr();
            b.give_back(chunk);
            assert_eq!(b.spares.len(), 1, "round {round}: kept");
            assert!(b.spares[0].is_empty(), "round {round}: emptied");
            b.settle();
            assert_eq!(b.spares.len(), 1, "round {round}: nothing more made");
            b.receive(&mut scratch, feeder(&msg)).unwrap();
            assert_eq!(b.chunks.front().unwrap().as_ptr(), ptr, "round {round}");
            assert_eq!(b.take_all(), msg);
            b.settle();
            check_invariants(&b);
        }
    }

    #[test]
    fn a_chunk_given_back_is_kept_only_as_an_owed_replacement_that_fits() {
        // Nothing handed over, nothing owed: a reader that was never read
        // from keeps no spare.
        let mut b = Buffer::default();
        b.give_back(Vec::with_capacity(1024));
        assert!(b.spares.is_empty());
        // Small-message mode: too small or past `SMALL_READ`, dropped.
        let mut scratch = vec![0u8; 8192];
        for cap in [SMALL_SPARE_MIN - 1, SMALL_READ + 1] {
            b.receive(&mut scratch, feeder(b"abc")).unwrap();
            b.take_all();
            b.give_back(Vec::with_capacity(cap));
            assert!(b.spares.is_empty(), "capacity {cap}");
            b.settle();
            assert_eq!(b.spares[0].capacity(), SMALL_SPARE_MIN, "made instead");
            b.spares.clear();
        }
        // Owed once, kept once.
        b.receive(&mut scratch, feeder(b"abc")).unwrap();
        b.take_all();
        b.give_back(vec![7; 512]);
        b.give_back(Vec::with_capacity(512));
        assert_eq!(b.spares.len(), 1);
        check_invariants(&b);
        // Past small-message mode: at least the receive size, at most one
        // receive's limit.
        let mut b = direct(16 * 1024);
        for (cap, kept) in [
            (8 * 1024, false),
            (MAX_READ_CHUNK + 1, false),
            (16 * 1024, true),
        ] {
            b.receive(no_scratch(), feeder(&bytes(REPLACE_MIN, 1)))
                .unwrap();
            b.take_all();
            b.give_back(Vec::with_capacity(cap));
            assert_eq!(b.spares.len(), usize::from(kept), "capacity {cap}");
            b.settle();
            assert_eq!(b.spares.len(), 1, "capacity {cap}: one replacement");
            assert!(b.spares[0].capacity() >= 16 * 1024);
            check_invariants(&b);
            b.spares.clear();
        }
        // Receives deferred to the read: the allocator's replacement, not
        // the chunk given back.
        let mut b = direct(DEFER_READ_SIZE);
        b.receive(no_scratch(), feeder(&bytes(DEFER_READ_SIZE / 2, 2)))
            .unwrap();
        assert!(b.receives_big());
        b.take_all();
        b.give_back(Vec::with_capacity(DEFER_READ_SIZE));
        assert!(b.spares.is_empty(), "refused with big receives");
        b.settle();
        assert_eq!(b.spares.len(), 1, "made instead");
    }
}
