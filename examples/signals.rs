//! Unix signals as loop callbacks: `add_signal_handler(SIGUSR1, f)` runs `f`
//! on the loop thread, as an ordinary callback, after the signal arrives
//! (never inside the signal handler itself). Deliveries that arrive before
//! the loop gets round to the callback are coalesced into one call, as in
//! asyncio. Bad signal numbers are errors, not panics, and
//! `remove_signal_handler` gives the signal back its default action.
//! The signals are raised with `loop_core::signal::raise` (`raise(3)`).

// cargo run --example signals

#![allow(clippy::print_stdout)]

use std::cell::RefCell;
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use loop_core::signal::{SIGKILL, SIGUSR1, raise};
use loop_core::{EventLoop, LoopError};

fn raise_usr1(times: u32) {
    for _ in 0..times {
        raise(SIGUSR1).expect("raise(SIGUSR1)");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ev = EventLoop::new()?;

    // Bad input is a LoopError named after asyncio's message.
    for sig in [0, 1000, SIGKILL] {
        match ev.add_signal_handler(sig, |_| {}) {
            Err(err @ (LoopError::SignalOutOfRange(_) | LoopError::SignalCannotBeCaught(_))) => {
                println!("add_signal_handler({sig}): {err}")
            }
            other => panic!("add_signal_handler({sig}) should fail, got {other:?}"),
        }
    }

    let loop_thread = thread::current().id();
    let calls = Rc::new(RefCell::new(Vec::new()));
    let log = calls.clone();
    ev.add_signal_handler(SIGUSR1, move |ev| {
        let n = log.borrow().len() + 1;
        let on_loop_thread = thread::current().id() == loop_thread;
        println!("  SIGUSR1 handler call {n} (on the loop thread: {on_loop_thread})");
        log.borrow_mut().push(on_loop_thread);
        if n == 5 {
            ev.stop();
        }
    })?;

    let ms = Duration::from_millis;
    ev.call_soon(|_| {
        println!("raising SIGUSR1 three times in one callback");
        raise_usr1(3);
    })?;
    for (i, at) in [20, 40, 60].into_iter().enumerate() {
        ev.call_later(ms(at), move |_| {
            println!("+{at} ms: raising SIGUSR1 once ({} of 3)", i + 1);
            raise_usr1(1);
        })?;
    }
    ev.call_later(ms(80), |_| {
        println!("+80 ms: raising SIGUSR1 on another thread");
        thread::spawn(|| raise_usr1(1))
            .join()
            .expect("raising thread panicked");
    })?;

    let watchdog = ev.call_later(Duration::from_secs(4), |ev| {
        println!("watchdog: the handler did not run 5 times within 4 s");
        ev.stop();
    })?;
    ev.run_forever()?;
    watchdog.cancel();

    println!(
        "7 signals raised, handler called {} times: the first three coalesced into one call",
        calls.borrow().len()
    );
    assert_eq!(*calls.borrow(), [true; 5]);

    // Removing the handler restores SIGUSR1's default action (terminate), so
    // the example does not raise it again.
    println!(
        "remove_signal_handler(SIGUSR1): {}",
        ev.remove_signal_handler(SIGUSR1)?
    );
    println!(
        "remove_signal_handler(SIGUSR1) again: {}",
        ev.remove_signal_handler(SIGUSR1)?
    );
    ev.close()?;
    Ok(())
}
