//! An accept storm: 1000 connections from two client threads while a
//! 10 ms timer re-arms itself on the same loop.
//!
//! The issue asks that the timer keep firing within 50 ms of its deadline.
//! Timing is not asserted (shared, noisy machines); the test asserts the
//! structure instead: accepting yields to the loop (at most `backlog`
//! connections per readiness event, timer ticks between accept batches),
//! and every connection is accepted and served. The worst lateness is
//! printed for the record (`cargo test --test accept_storm -- --nocapture`).

mod support;

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use loop_core::{EventLoop, ExceptionContext};
use loop_futures::{Error, EventLoopExt, sleep};
use loop_transports::{DEFAULT_BACKLOG, ServerOptions, create_server};
use support::{Hooks, Rec, Recorder};

const CLIENT_THREADS: usize = 2;
const ROUNDS: usize = 10;
/// Connections one client thread opens per round; all threads together
/// keep at most `DEFAULT_BACKLOG` pending, so the kernel never drops a SYN.
const PER_ROUND: usize = 50;
const TOTAL: usize = CLIENT_THREADS * ROUNDS * PER_ROUND;
const TICK: Duration = Duration::from_millis(10);
/// Bound of the whole scenario (the test fails instead of hanging).
const LIMIT: Duration = Duration::from_secs(60);
/// How long a client thread blocks at most on one step.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the loop did, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The server accepted a connection (its protocol factory ran).
    Accept,
    /// An accepted connection's `connection_made` ran. It is scheduled
    /// with `call_soon` at accept time, so it runs in the next iteration,
    /// before that iteration's accepts: a run of consecutive `Accept`s is
    /// what one readiness event accepted.
    Made,
    /// The repeating timer fired.
    Tick,
}

/// A `call_at` timer that re-arms itself every [`TICK`] until stopped.
struct Ticker {
    steps: Rc<RefCell<Vec<Step>>>,
    lateness: RefCell<Vec<Duration>>,
    ticks: Arc<AtomicUsize>,
    stopped: Cell<bool>,
}

impl Ticker {
    fn arm(self: Rc<Self>, ev: &EventLoop) -> Result<(), Error> {
        let deadline = ev.time() + TICK;
        ev.call_at(deadline, move |ev| {
            // Timers never run early: the loop clock is the real one here.
            self.lateness
                .borrow_mut()
                .push(Instant::now().saturating_duration_since(deadline));
            self.steps.borrow_mut().push(Step::Tick);
            self.ticks.fetch_add(1, Ordering::SeqCst);
            if !self.stopped.get() {
                self.clone().arm(ev).expect("re-arm the timer");
            }
        })?;
        Ok(())
    }
}

/// One client thread: `ROUNDS` rounds of `PER_ROUND` connections opened
/// back to back, each sending its id and reading the echo; between rounds
/// it waits for a timer tick (so accept batches are separated by ticks
/// only if the loop keeps running its timers while accepting).
fn client(
    addr: SocketAddr,
    first_id: u32,
    ticks: Arc<AtomicUsize>,
) -> JoinHandle<io::Result<usize>> {
    thread::spawn(move || {
        let mut served = 0;
        let mut id = first_id;
        for round in 0..ROUNDS {
            let mut conns = Vec::with_capacity(PER_ROUND);
            for _ in 0..PER_ROUND {
                let mut conn = TcpStream::connect_timeout(&addr, PEER_TIMEOUT)?;
                conn.set_read_timeout(Some(PEER_TIMEOUT))?;
                conn.write_all(&id.to_le_bytes())?;
                conns.push((id, conn));
                id += 1;
            }
            for (id, mut conn) in conns {
                let mut echo = [0u8; 4];
                conn.read_exact(&mut echo)?;
                if u32::from_le_bytes(echo) != id {
                    return Err(io::Error::other(format!("connection {id}: wrong echo")));
                }
                served += 1;
            }
            let seen = ticks.load(Ordering::SeqCst);
            let mut waited = 0;
            while ticks.load(Ordering::SeqCst) == seen {
                // A starved loop never ticks; a slow machine ticks late:
                // the bound is generous (it only turns a hang into an error).
                if waited == 30_000 {
                    return Err(io::Error::other(format!(
                        "round {round}: no timer tick within 30 s"
                    )));
                }
                thread::sleep(Duration::from_millis(1));
                waited += 1;
            }
        }
        Ok(served)
    })
}

/// Splits `steps` at the steps `at` selects; the number of accepts in
/// each part (parts without one left out).
fn accepts_between(steps: &[Step], at: impl Fn(Step) -> bool) -> Vec<usize> {
    steps
        .split(|s| at(*s))
        .map(|part| part.iter().filter(|s| **s == Step::Accept).count())
        .filter(|&n| n > 0)
        .collect()
}

#[test]
#[allow(clippy::print_stdout)] // The lead quotes the measured lateness.
fn a_thousand_connects_while_a_ten_ms_timer_keeps_firing() {
    let ev = EventLoop::new().expect("create loop");
    let reports: Rc<RefCell<Vec<String>>> = Rc::default();
    let sink = reports.clone();
    ev.set_exception_handler(Some(move |_: &EventLoop, ctx: ExceptionContext| {
        sink.borrow_mut().push(ctx.message().to_string());
    }));

    let ev2 = ev.clone();
    let outcome = ev.run_until_complete(async move {
        let ev = ev2;
        let steps: Rc<RefCell<Vec<Step>>> = Rc::default();
        let accepted: Rc<RefCell<Vec<Rec>>> = Rc::default();
        let (log, list) = (steps.clone(), accepted.clone());
        let server = create_server(
            &ev,
            move || {
                log.borrow_mut().push(Step::Accept);
                let rec = Rec::default();
                list.borrow_mut().push(rec.clone());
                let made = log.clone();
                let hooks = Hooks::echo().on_made(move |_, _| made.borrow_mut().push(Step::Made));
                Recorder::new(rec, hooks)
            },
            &["127.0.0.1"],
            0,
            ServerOptions::default(),
        )
        .await?;
        let addr = server.sockets()[0];

        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = Rc::new(Ticker {
            steps: steps.clone(),
            lateness: RefCell::default(),
            ticks: ticks.clone(),
            stopped: Cell::new(false),
        });
        ticker.clone().arm(&ev)?;

        let started = Instant::now();
        let per_thread = (ROUNDS * PER_ROUND) as u32;
        let threads: Vec<_> = (0..CLIENT_THREADS as u32)
            .map(|i| client(addr, i * per_thread, ticks.clone()))
            .collect();
        let deadline = ev.time() + LIMIT;
        while !threads.iter().all(JoinHandle::is_finished) {
            if ev.time() >= deadline {
                return Err(Error::msg("the client threads did not finish in time"));
            }
            sleep(Duration::from_millis(5)).await?;
        }
        let storm = started.elapsed();
        let mut served = 0;
        for thread in threads {
            served += thread.join().map_err(|_| Error::msg("client panicked"))??;
        }
        ticker.stopped.set(true);

        // Every server-side connection saw its 4 bytes, echoed them, got
        // the client's EOF and closed.
        while server.active_connections() > 0 {
            if ev.time() >= deadline {
                return Err(Error::msg("server connections did not close in time"));
            }
            sleep(Duration::from_millis(5)).await?;
        }
        server.close();

        assert_eq!(served, TOTAL, "every client got its echo");
        let steps = steps.borrow().clone();
        let accepts = steps.iter().filter(|s| **s == Step::Accept).count();
        assert_eq!(accepts, TOTAL, "every connection accepted once");
        for rec in accepted.borrow().iter() {
            assert_eq!(rec.data().len(), 4);
            rec.assert_complete();
        }

        // Accepting yields to the loop: no readiness event accepts more
        // than `backlog` connections, and the timer fired between batches.
        let first = steps
            .iter()
            .position(|s| *s == Step::Accept)
            .expect("accepts");
        let last = steps
            .iter()
            .rposition(|s| *s == Step::Accept)
            .expect("accepts");
        let during = steps[first..=last]
            .iter()
            .filter(|s| **s == Step::Tick)
            .count();
        let made = steps.iter().filter(|s| **s == Step::Made).count();
        assert_eq!(made, TOTAL, "connection_made once per connection");
        let per_event = accepts_between(&steps, |s| s != Step::Accept);
        let longest = per_event.iter().copied().max().unwrap_or(0);
        assert!(
            longest <= DEFAULT_BACKLOG as usize,
            "one readiness event accepted {longest} connections"
        );
        let batches = accepts_between(&steps, |s| s == Step::Tick);
        assert!(
            batches.len() >= ROUNDS,
            "accepts came in {} tick-separated batches, expected at least {ROUNDS}",
            batches.len()
        );
        assert!(
            during >= ROUNDS - 1,
            "only {during} timer ticks during the storm"
        );

        let lateness = ticker.lateness.borrow();
        let max = lateness.iter().copied().max().unwrap_or_default();
        let mean = lateness.iter().sum::<Duration>() / lateness.len().max(1) as u32;
        println!(
            "ACCEPT STORM: {TOTAL} connections in {storm:?}; 10 ms timer fired {} times \
             ({during} during the storm); lateness max {max:?}, mean {mean:?} \
             (issue target: < 50 ms, not asserted); {} tick-separated accept batches; \
             {} accept events, largest {longest}",
            lateness.len(),
            batches.len(),
            per_event.len()
        );
        Ok::<_, Error>(())
    });
    ev.close().expect("close the loop");
    if let Err(err) = outcome {
        panic!("scenario failed: {err}");
    }
    assert!(
        reports.borrow().is_empty(),
        "unexpected exception reports: {:?}",
        reports.borrow()
    );
}
