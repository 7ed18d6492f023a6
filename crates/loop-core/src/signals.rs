//! Unix signal handlers that run as ordinary loop callbacks
//! (asyncio's `add_signal_handler` / `remove_signal_handler`).
//!
//! Built on `signal-hook`'s self-pipe action: the async-signal-safe part
//! (writing one byte to a socket) is signal-hook's, so this crate needs no
//! `unsafe` for signals. Chosen over raw `libc::sigaction` because
//! signal-hook chains with other handlers in the process, refuses the
//! signals that must not be caught, and can emulate the default action once
//! our handler is removed.
//!
//! Invariants:
//! 1. Per handled signal: one non-blocking socket pair; the write end belongs
//!    to signal-hook's action, the read end is registered with the poller
//!    under the signal's reserved token.
//! 2. The callback runs on the loop thread through the ready queue, never in
//!    signal context; N deliveries before the loop drains the pipe run the
//!    callback once (signals coalesce, as in asyncio).
//! 3. After `remove_signal_handler` (or `close`) the signal's default action
//!    applies again (asyncio restores `SIG_DFL`), unless another loop in the
//!    process still handles that signal.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::panic::Location;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use mio::net::UnixStream;
use mio::{Interest, Registry};
use signal_hook::SigId;

use crate::error::LoopError;
use crate::event_loop::EventLoop;
use crate::poller::signal_token;

/// A signal callback: called on the loop thread each time the signal
/// arrived since the last call.
pub(crate) type SignalCallback = Rc<dyn Fn(&EventLoop)>;

/// Largest signal number + 1 on Linux (`NSIG`).
const NSIG: i32 = 65;

struct SignalEntry {
    callback: SignalCallback,
    site: &'static Location<'static>,
    read: UnixStream,
    id: SigId,
}

/// Process-wide: per signal, how many loops handle it, and the flag that
/// makes signal-hook run the default action when none does (invariant 3).
type DefaultFlags = Mutex<HashMap<i32, (usize, Arc<AtomicBool>)>>;

fn defaults() -> &'static DefaultFlags {
    static DEFAULTS: OnceLock<DefaultFlags> = OnceLock::new();
    DEFAULTS.get_or_init(Default::default)
}

/// Checks `sig` the way asyncio's `_check_signal` does.
pub(crate) fn check_signal(sig: i32) -> Result<(), LoopError> {
    if !(1..NSIG).contains(&sig) {
        return Err(LoopError::SignalOutOfRange(sig));
    }
    if signal_hook::consts::FORBIDDEN.contains(&sig) {
        return Err(LoopError::SignalCannotBeCaught(sig));
    }
    Ok(())
}

/// The signal handlers of one loop.
#[derive(Default)]
pub(crate) struct Signals {
    entries: HashMap<i32, SignalEntry>,
}

impl Signals {
    /// Installs (or replaces) the handler for `sig`. Returns the replaced
    /// callback for the caller to drop.
    pub(crate) fn add(
        &mut self,
        registry: &Registry,
        sig: i32,
        callback: SignalCallback,
        site: &'static Location<'static>,
    ) -> Result<Option<SignalCallback>, LoopError> {
        check_signal(sig)?;
        if let Some(entry) = self.entries.get_mut(&sig) {
            entry.site = site;
            return Ok(Some(std::mem::replace(&mut entry.callback, callback)));
        }
        let (read, write) = StdUnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let mut read = UnixStream::from_std(read);
        registry.register(&mut read, signal_token(sig), Interest::READABLE)?;
        let id = match signal_hook::low_level::pipe::register(sig, write) {
            Ok(id) => id,
            Err(err) => {
                let _ = registry.deregister(&mut read);
                return Err(err.into());
            }
        };
        {
            let mut defaults = defaults().lock().unwrap_or_else(|e| e.into_inner());
            match defaults.get_mut(&sig) {
                Some((count, flag)) => {
                    *count += 1;
                    flag.store(false, Ordering::SeqCst);
                }
                None => {
                    let flag = Arc::new(AtomicBool::new(false));
                    if let Err(err) =
                        signal_hook::flag::register_conditional_default(sig, flag.clone())
                    {
                        tracing::debug!(sig, %err, "no default-action emulation for this signal");
                    }
                    defaults.insert(sig, (1, flag));
                }
            }
        }
        self.entries.insert(
            sig,
            SignalEntry {
                callback,
                site,
                read,
                id,
            },
        );
        Ok(None)
    }

    /// Removes the handler for `sig`; returns it if there was one.
    pub(crate) fn remove(
        &mut self,
        registry: Option<&Registry>,
        sig: i32,
    ) -> Option<SignalCallback> {
        let mut entry = self.entries.remove(&sig)?;
        signal_hook::low_level::unregister(entry.id);
        if let Some(registry) = registry {
            let _ = registry.deregister(&mut entry.read);
        }
        let mut defaults = defaults().lock().unwrap_or_else(|e| e.into_inner());
        if let Some((count, flag)) = defaults.get_mut(&sig) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                flag.store(true, Ordering::SeqCst);
            }
        }
        Some(entry.callback)
    }

    /// The pipe of `sig` is readable: drains it and returns the callback to
    /// schedule, if the handler is still installed.
    pub(crate) fn fired(
        &mut self,
        sig: i32,
    ) -> Option<(SignalCallback, &'static Location<'static>)> {
        let entry = self.entries.get_mut(&sig)?;
        let mut buf = [0u8; 64];
        loop {
            match entry.read.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        Some((entry.callback.clone(), entry.site))
    }

    /// True if `sig` has a handler.
    pub(crate) fn handles(&self, sig: i32) -> bool {
        self.entries.contains_key(&sig)
    }

    /// True if no signal is handled.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every handled signal.
    pub(crate) fn signals(&self) -> Vec<i32> {
        self.entries.keys().copied().collect()
    }
}
