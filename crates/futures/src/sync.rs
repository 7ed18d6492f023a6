//! The lock and condition variable behind [`ConcurrentFuture`](crate::ConcurrentFuture),
//! swappable for loom's models under `--cfg loom` (as loop-core's `sync`).
//!
//! Normally these are parking_lot's types. Under loom they are thin wrappers
//! over `loom::sync` with parking_lot's signatures (`lock` cannot fail,
//! `Condvar::wait` takes `&mut MutexGuard`), so the code using them is the
//! same in both builds. loom does not model time: under loom a timed wait
//! never times out (it waits for a notification, like loom's own
//! `wait_timeout`).

#[cfg(not(loom))]
mod imp {
    pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};
}

#[cfg(loom)]
mod imp {
    use std::ops::{Deref, DerefMut};
    use std::time::Instant;

    /// loom's mutex behind parking_lot's `lock` signature.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().expect("loom mutex poisoned")))
        }
    }

    /// A guard that [`Condvar::wait`] can take out and put back through
    /// `&mut` (the slot is empty only inside `wait`).
    #[derive(Debug)]
    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;

        fn deref(&self) -> &T {
            self.0.as_ref().expect("guard taken")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("guard taken")
        }
    }

    /// Whether a timed wait timed out (never, under loom).
    #[derive(Debug)]
    pub(crate) struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            self.0
        }
    }

    /// loom's condition variable behind parking_lot's signatures.
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.0.take().expect("guard taken");
            guard.0 = Some(self.0.wait(inner).expect("loom mutex poisoned"));
        }

        /// Waits for a notification; loom has no clock, so this never times
        /// out.
        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _deadline: Instant,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult(false)
        }
    }
}

pub(crate) use imp::*;
