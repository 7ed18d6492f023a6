//! Debug mode: switched on by the builder, `set_debug` or the `TULIP_DEBUG`
//! environment variable; it logs slow callbacks with where they were
//! scheduled (asyncio's debug mode and `slow_callback_duration`).
//!
//! Log output is captured with a `tracing-subscriber` fmt layer writing to
//! a buffer, installed for the current thread only. Slowness is simulated
//! by advancing a `ManualClock` inside the callback.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loop_core::{DEBUG_ENV_VAR, EventLoop, ManualClock, SLOW_CALLBACK_DURATION};

/// An `io::Write` into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with every `tracing` event of this thread formatted into a
/// buffer; returns `f`'s result and the captured text.
fn capture<R>(f: impl FnOnce() -> R) -> (R, String) {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (result, text)
}

fn manual_loop(debug: bool) -> (EventLoop, ManualClock) {
    let clock = ManualClock::new();
    let ev = EventLoop::builder()
        .manual_clock(clock.clone())
        .debug(debug)
        .build()
        .unwrap();
    (ev, clock)
}

/// The slow-callback warnings in `logs`.
fn slow_lines(logs: &str) -> Vec<&str> {
    logs.lines()
        .filter(|l| l.contains("Executing callback created at"))
        .collect()
}

const SLOW: Duration = Duration::from_millis(150);

#[test]
fn builder_and_set_debug_switch_debug_mode() {
    let on = EventLoop::builder().debug(true).build().unwrap();
    assert!(on.get_debug());
    let off = EventLoop::builder().debug(false).build().unwrap();
    assert!(!off.get_debug());
    off.set_debug(true);
    assert!(off.get_debug());
    on.set_debug(false);
    assert!(!on.get_debug());
    assert_eq!(on.slow_callback_duration(), SLOW_CALLBACK_DURATION);
    let custom = EventLoop::builder()
        .slow_callback_duration(Duration::from_millis(7))
        .build()
        .unwrap();
    assert_eq!(custom.slow_callback_duration(), Duration::from_millis(7));
    custom.set_slow_callback_duration(Duration::from_secs(1));
    assert_eq!(custom.slow_callback_duration(), Duration::from_secs(1));
}

/// Set by [`debug_mode_follows_the_env_var`] for its child processes.
const EXPECT_VAR: &str = "TULIP_TEST_EXPECT_DEBUG";

/// Checks the default debug mode against the environment. Run directly it
/// checks whatever `TULIP_DEBUG` the test run has; run as a child of
/// [`debug_mode_follows_the_env_var`] it checks the value the parent set.
#[test]
fn debug_env_probe() {
    let expected = match std::env::var(EXPECT_VAR) {
        Ok(v) => v == "1",
        Err(_) => std::env::var_os(DEBUG_ENV_VAR).is_some_and(|v| !v.is_empty() && v != "0"),
    };
    assert_eq!(EventLoop::new().unwrap().get_debug(), expected);
    assert_eq!(EventLoop::builder().build().unwrap().get_debug(), expected);
    assert!(
        !EventLoop::builder()
            .debug(false)
            .build()
            .unwrap()
            .get_debug(),
        "the builder overrides the environment"
    );
    assert!(
        EventLoop::builder()
            .debug(true)
            .build()
            .unwrap()
            .get_debug()
    );
}

#[test]
fn debug_mode_follows_the_env_var() {
    // The environment is process-wide, so each case runs this test binary
    // again as a child process, filtered to `debug_env_probe`.
    let exe = std::env::current_exe().unwrap();
    let cases: [(Option<&str>, bool); 6] = [
        (Some("1"), true),
        (Some("yes"), true),
        (Some("00"), true),
        (Some("0"), false),
        (Some(""), false),
        (None, false),
    ];
    for (value, expected) in cases {
        let mut cmd = Command::new(&exe);
        cmd.args(["debug_env_probe", "--exact", "--test-threads=1"])
            .env(EXPECT_VAR, if expected { "1" } else { "0" });
        match value {
            Some(v) => cmd.env(DEBUG_ENV_VAR, v),
            None => cmd.env_remove(DEBUG_ENV_VAR),
        };
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{DEBUG_ENV_VAR}={value:?} should give debug={expected}\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("1 passed"),
            "the probe did not run for {value:?}:\n{stdout}"
        );
    }
}

#[test]
fn slow_callbacks_are_logged_with_their_creation_site() {
    let (ev, clock) = manual_loop(true);
    let (sites, logs) = capture(|| {
        let c = clock.clone();
        let slow_line = line!() + 1;
        let slow = ev.call_soon(move |_| c.advance(SLOW)).unwrap();
        let c = clock.clone();
        let fast = ev
            .call_soon(move |_| c.advance(Duration::from_millis(1)))
            .unwrap();
        let c = clock.clone();
        let timer = ev
            .call_later(Duration::from_secs(1), move |_| {
                c.advance(Duration::from_millis(250))
            })
            .unwrap();
        ev.run_once().unwrap(); // the two call_soon callbacks
        ev.run_once().unwrap(); // the timer (the idle loop jumps to it)
        assert_eq!(slow.site().line(), slow_line);
        (slow.site(), fast.site(), timer.site())
    });
    let (slow, fast, timer) = sites;
    let lines = slow_lines(&logs);
    assert_eq!(lines.len(), 2, "{logs}");
    assert!(lines[0].contains("WARN"), "{logs}");
    assert!(
        lines[0].contains(&format!("{}:{}:", file!(), slow.line())),
        "{logs}"
    );
    assert!(lines[0].contains("took 0.150 seconds"), "{logs}");
    assert!(
        lines[1].contains(&format!("{}:{}:", file!(), timer.line())),
        "{logs}"
    );
    assert!(lines[1].contains("took 0.250 seconds"), "{logs}");
    assert!(
        !logs.contains(&format!("{}:{}:", file!(), fast.line())),
        "a fast callback was logged:\n{logs}"
    );
    ev.close().unwrap();
}

#[test]
fn slow_reader_callbacks_are_logged_with_the_add_reader_site() {
    let (ev, clock) = manual_loop(true);
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    (&b).write_all(b"x").unwrap();
    let (line, logs) = capture(|| {
        let reader = a.try_clone().unwrap();
        let c = clock.clone();
        let line = line!() + 1;
        ev.add_reader(&a, move |_| {
            let _ = (&reader).read(&mut [0u8; 8]);
            c.advance(SLOW);
        })
        .unwrap();
        ev.call_soon(|_| {}).unwrap(); // keeps run_once from blocking
        ev.run_once().unwrap();
        line
    });
    let lines = slow_lines(&logs);
    assert_eq!(lines.len(), 1, "{logs}");
    assert!(
        lines[0].contains(&format!("{}:{}:", file!(), line)),
        "{logs}"
    );
    assert!(ev.remove_reader(&a));
    ev.close().unwrap();
}

#[test]
fn the_threshold_is_inclusive_and_configurable() {
    let clock = ManualClock::new();
    let ev = EventLoop::builder()
        .manual_clock(clock.clone())
        .debug(true)
        .slow_callback_duration(Duration::from_millis(10))
        .build()
        .unwrap();
    let (_, logs) = capture(|| {
        for ms in [9, 10, 11] {
            let c = clock.clone();
            ev.call_soon(move |_| c.advance(Duration::from_millis(ms)))
                .unwrap();
        }
        ev.run_once().unwrap();
    });
    let lines = slow_lines(&logs);
    assert_eq!(lines.len(), 2, "{logs}");
    assert!(lines[0].contains("took 0.010 seconds"), "{logs}");
    assert!(lines[1].contains("took 0.011 seconds"), "{logs}");

    ev.set_slow_callback_duration(Duration::from_secs(1));
    let (_, logs) = capture(|| {
        let c = clock.clone();
        ev.call_soon(move |_| c.advance(Duration::from_millis(500)))
            .unwrap();
        ev.run_once().unwrap();
    });
    assert!(slow_lines(&logs).is_empty(), "{logs}");
    ev.close().unwrap();
}

#[test]
fn nothing_is_logged_with_debug_off() {
    let (ev, clock) = manual_loop(false);
    let (_, logs) = capture(|| {
        let c = clock.clone();
        ev.call_soon(move |_| c.advance(SLOW)).unwrap();
        // Control: the default exception handler logs through the same
        // capture, proving the capture works.
        ev.call_soon(|_| panic!("control panic")).unwrap();
        ev.run_once().unwrap();
    });
    assert!(slow_lines(&logs).is_empty(), "{logs}");
    assert!(logs.contains("control panic"), "capture broken:\n{logs}");

    // Switching debug on at run time starts the reports.
    ev.set_debug(true);
    let (_, logs) = capture(|| {
        let c = clock.clone();
        ev.call_soon(move |_| c.advance(SLOW)).unwrap();
        ev.run_once().unwrap();
    });
    assert_eq!(slow_lines(&logs).len(), 1, "{logs}");
    ev.close().unwrap();
}
