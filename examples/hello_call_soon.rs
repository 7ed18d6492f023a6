//! `call_soon` ordering: callbacks run first-in first-out, a callback
//! scheduled by a running callback waits for the next iteration of the loop,
//! a cancelled handle never runs, and `stop` makes `run_forever` return once
//! the current iteration is done. This is asyncio's `loop.call_soon`,
//! `loop.run_forever` and `loop.stop` on loop-core's `EventLoop`; the
//! README's first example is this program without the printing.

// cargo run --example hello_call_soon

#![allow(clippy::print_stdout)]

use std::cell::RefCell;
use std::rc::Rc;

use loop_core::EventLoop;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ev = EventLoop::new()?;
    let log = Rc::new(RefCell::new(Vec::new()));

    // Three callbacks, run in the order they were scheduled.
    for i in 1..=3 {
        let log = log.clone();
        ev.call_soon(move |_| {
            println!("callback {i}");
            log.borrow_mut().push(i);
        })?;
    }

    // A callback that schedules more work: that work runs in the *next*
    // iteration, after everything that was already queued.
    let later = log.clone();
    ev.call_soon(move |ev| {
        println!("callback 4 schedules callback 5");
        later.borrow_mut().push(4);
        ev.call_soon(move |ev| {
            println!("callback 5 runs one iteration later and calls stop()");
            later.borrow_mut().push(5);
            ev.stop();
        })
        .expect("the loop is open while it runs");
    })?;

    // A handle can be cancelled until its callback has run.
    let handle = ev.call_soon(|_| println!("never printed: this handle was cancelled"))?;
    handle.cancel();
    println!("handle cancelled: {}", handle.cancelled());

    ev.run_forever()?;
    println!(
        "run_forever returned after {:?}; is_running = {}",
        log.borrow(),
        ev.is_running()
    );
    assert_eq!(*log.borrow(), [1, 2, 3, 4, 5]);

    ev.close()?;
    // A closed loop refuses new work, with asyncio's message.
    let refused = ev
        .call_soon(|_| {})
        .expect_err("a closed loop refuses call_soon");
    println!("call_soon after close: {refused}");
    Ok(())
}
