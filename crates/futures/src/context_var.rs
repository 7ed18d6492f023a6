//! [`ContextVar`]: task-local values (the Rust form of asyncio's
//! `contextvars`, which asyncio threads through `Task(context=…)` and
//! `call_soon(context=…)`).
//!
//! Invariants:
//! 1. A value set inside a task is seen by that task, and by the callbacks
//!    it schedules with `call_soon` / `call_later` / `call_at` (they capture
//!    the context when scheduled, as asyncio's `Handle` does).
//! 2. A new task starts with a copy of its creator's values: later `set`s in
//!    either one are not seen by the other (copy-on-write: the values are
//!    shared until one side writes).
//! 3. Outside any task the thread's top-level context is used, so values set
//!    before `run_until_complete` are inherited by the tasks it creates.
//! 4. Values do not cross threads (`call_soon_threadsafe` callbacks and
//!    executor jobs start with no values): an `Rc` cannot.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use loop_core::task_context;

static NEXT_VAR: AtomicU64 = AtomicU64::new(1);

/// The values of one context: variable id → value.
#[derive(Clone, Default)]
struct Values(HashMap<u64, Rc<dyn Any>>);

fn current_values() -> Option<Rc<Values>> {
    task_context::current()?.downcast::<Values>().ok()
}

/// A task-local variable.
///
/// Equivalent of [`contextvars.ContextVar`](https://docs.python.org/3/library/contextvars.html)
/// as asyncio uses it.
///
/// # Examples
///
/// ```
/// use loop_futures::{ContextVar, Error, create_task, run};
///
/// let request_id = ContextVar::new("request_id");
/// let seen = run(async move {
///     request_id.set(7u32);
///     let var = request_id.clone();
///     let child = create_task(async move { Ok::<_, Error>(var.get()) })?;
///     request_id.set(8); // not seen by the child: it got a copy
///     Ok::<_, Error>((child.await?, request_id.get()))
/// })
/// .unwrap();
/// assert_eq!(seen, (Some(7), Some(8)));
/// ```
pub struct ContextVar<T> {
    id: u64,
    name: Rc<str>,
    default: Option<Rc<T>>,
    _marker: PhantomData<T>,
}

impl<T> Clone for ContextVar<T> {
    fn clone(&self) -> Self {
        ContextVar {
            id: self.id,
            name: self.name.clone(),
            default: self.default.clone(),
            _marker: PhantomData,
        }
    }
}

/// What [`ContextVar::set`] returns, to undo it with
/// [`ContextVar::reset`].
#[derive(Debug)]
pub struct ContextToken {
    var: u64,
    old: Option<Rc<dyn Any>>,
}

impl<T: Clone + 'static> ContextVar<T> {
    /// A variable with no default.
    pub fn new(name: &str) -> Self {
        ContextVar {
            id: NEXT_VAR.fetch_add(1, Ordering::Relaxed),
            name: Rc::from(name),
            default: None,
            _marker: PhantomData,
        }
    }

    /// A variable whose value is `default` until set.
    pub fn with_default(name: &str, default: T) -> Self {
        ContextVar {
            default: Some(Rc::new(default)),
            ..Self::new(name)
        }
    }

    /// The variable's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value in the current context, else the default.
    pub fn get(&self) -> Option<T> {
        current_values()
            .and_then(|values| {
                values
                    .0
                    .get(&self.id)
                    .and_then(|v| v.downcast_ref::<T>().cloned())
            })
            .or_else(|| self.default.as_deref().cloned())
    }

    /// Sets the value in the current context (the current task's, or the
    /// thread's top-level one).
    pub fn set(&self, value: T) -> ContextToken {
        let current = task_context::replace(None);
        let mut values = match current.and_then(|c| c.downcast::<Values>().ok()) {
            Some(rc) => Rc::unwrap_or_clone(rc),
            None => Values::default(),
        };
        let old = values.0.insert(self.id, Rc::new(value));
        task_context::replace(Some(Rc::new(values)));
        ContextToken { var: self.id, old }
    }

    /// Restores the value the variable had before the `set` that returned
    /// `token`. A token of another variable is ignored.
    pub fn reset(&self, token: ContextToken) {
        if token.var != self.id {
            return;
        }
        let current = task_context::replace(None);
        let mut values = match current.and_then(|c| c.downcast::<Values>().ok()) {
            Some(rc) => Rc::unwrap_or_clone(rc),
            None => Values::default(),
        };
        match token.old {
            Some(old) => {
                values.0.insert(self.id, old);
            }
            None => {
                values.0.remove(&self.id);
            }
        }
        task_context::replace(Some(Rc::new(values)));
    }
}

impl<T> fmt::Debug for ContextVar<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextVar")
            .field("name", &&*self.name)
            .finish()
    }
}
