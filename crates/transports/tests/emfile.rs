//! Running out of file descriptors on accept (`EMFILE`). Its own test
//! binary: `RLIMIT_NOFILE` is process-wide, so nothing else may run here.
//!
//! The loop runs on a [`ManualClock`]: the retry after
//! [`ACCEPT_RETRY_DELAY`] fires only when the test moves the clock, so
//! "accepting is paused until the retry" is checked without any timing.
//! The test drives the loop itself (a task that yields, with short real
//! sleeps to let the client threads and the kernel progress) and never
//! leaves it idle, so the clock never jumps on its own.

mod support;

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use loop_core::{EventLoop, ExceptionContext, ManualClock};
use loop_futures::{Error, EventLoopExt, yield_now};
use loop_transports::{ACCEPT_RETRY_DELAY, ServerOptions, create_server};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use socket2::{Domain, Socket, Type};
use support::{Hooks, Rec, Recorder};

/// Loop iterations [`drive_until`] runs at most (each after a 250 µs real
/// sleep: about 5 s).
const MAX_SPINS: usize = 20_000;

/// How long a client thread blocks at most.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs loop iterations until `cond` holds; an error after [`MAX_SPINS`].
async fn drive_until(what: &str, mut cond: impl FnMut() -> bool) -> Result<(), Error> {
    for _ in 0..MAX_SPINS {
        if cond() {
            return Ok(());
        }
        thread::sleep(Duration::from_micros(250));
        yield_now().await?;
    }
    Err(Error::msg(format!("gave up waiting for {what}")))
}

/// Runs `n` loop iterations, giving the kernel a moment before each.
async fn drive(n: usize) -> Result<(), Error> {
    for _ in 0..n {
        thread::sleep(Duration::from_micros(250));
        yield_now().await?;
    }
    Ok(())
}

/// Lowers the soft `RLIMIT_NOFILE` to just above the fds in use; restores
/// the saved limit on drop (also when the test fails).
struct LoweredLimit {
    saved: Rlimit,
}

impl LoweredLimit {
    fn new(headroom: u64) -> io::Result<LoweredLimit> {
        let saved = getrlimit(Resource::Nofile);
        let highest = std::fs::read_dir("/proc/self/fd")?
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u64>().ok())
            .max()
            .unwrap_or(2);
        let lowered = Rlimit {
            current: Some(highest + 1 + headroom),
            maximum: saved.maximum,
        };
        setrlimit(Resource::Nofile, lowered)?;
        Ok(LoweredLimit { saved })
    }
}

impl Drop for LoweredLimit {
    fn drop(&mut self) {
        setrlimit(Resource::Nofile, self.saved).expect("restore RLIMIT_NOFILE");
    }
}

/// Opens /dev/null until the process is out of fds; returns the files.
fn exhaust_fds() -> io::Result<Vec<File>> {
    let mut hog = Vec::new();
    for _ in 0..10_000 {
        match File::open("/dev/null") {
            Ok(file) => hog.push(file),
            Err(err) if err.raw_os_error() == Some(emfile()) => return Ok(hog),
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::other("10 000 files opened and still no EMFILE"))
}

/// `EMFILE` (24 on Linux), as rustix spells it.
fn emfile() -> i32 {
    rustix::io::Errno::MFILE.raw_os_error()
}

/// A client whose socket exists before the fds run out (creating it then
/// would fail too): on `go` it connects, sends `msg` and reads the echo.
struct Client {
    go: mpsc::Sender<()>,
    thread: JoinHandle<io::Result<Vec<u8>>>,
}

impl Client {
    fn prepare(
        addr: SocketAddr,
        msg: &'static [u8],
        connected: Arc<AtomicUsize>,
    ) -> io::Result<Client> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        let (go, wait) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            wait.recv_timeout(PEER_TIMEOUT)
                .map_err(|_| io::Error::other("never told to connect"))?;
            socket.connect_timeout(&addr.into(), PEER_TIMEOUT)?;
            connected.fetch_add(1, Ordering::SeqCst);
            let mut conn: TcpStream = socket.into();
            conn.set_read_timeout(Some(PEER_TIMEOUT))?;
            conn.write_all(msg)?;
            let mut echo = vec![0; msg.len()];
            conn.read_exact(&mut echo)?;
            Ok(echo)
        });
        Ok(Client { go, thread })
    }
}

/// One exception-handler report: the message and the error's errno.
type Report = (String, Option<i32>);

#[test]
fn emfile_on_accept_pauses_accepting_and_retries_exactly_once() {
    let clock = ManualClock::new();
    let ev = EventLoop::builder()
        .manual_clock(clock.clone())
        .build()
        .expect("create loop");
    let reports: Rc<RefCell<Vec<Report>>> = Rc::default();
    let sink = reports.clone();
    ev.set_exception_handler(Some(move |_: &EventLoop, ctx: ExceptionContext| {
        let errno = ctx
            .error()
            .and_then(|e| e.downcast_ref::<io::Error>())
            .and_then(io::Error::raw_os_error);
        sink.borrow_mut().push((ctx.message().to_string(), errno));
    }));

    let ev2 = ev.clone();
    let result = ev.run_until_complete(async move {
        let ev = ev2;
        let accepted: Rc<RefCell<Vec<Rec>>> = Rc::default();
        let list = accepted.clone();
        // Two listening sockets: the retry is the server's, not one per
        // listening socket (cpython#151615).
        let server = create_server(
            &ev,
            move || {
                let rec = Rec::default();
                list.borrow_mut().push(rec.clone());
                Recorder::new(rec, Hooks::echo())
            },
            &["127.0.0.1", "127.0.0.2"],
            0,
            ServerOptions::default(),
        )
        .await?;
        let addrs = server.sockets();
        assert_eq!(addrs.len(), 2, "{addrs:?}");

        let connected = Arc::new(AtomicUsize::new(0));
        let a = Client::prepare(addrs[0], b"ping-a", connected.clone())?;
        let b = Client::prepare(addrs[1], b"ping-b", connected.clone())?;

        let limit = LoweredLimit::new(16)?;
        let hog = exhaust_fds()?;
        assert!(
            File::open("/dev/null").is_err(),
            "the process is out of fds"
        );
        let base_timers = ev.stats().timers;

        for client in [&a, &b] {
            client
                .go
                .send(())
                .map_err(|_| Error::msg("client thread gone"))?;
        }
        drive_until("both clients connected", || {
            connected.load(Ordering::SeqCst) == 2
        })
        .await?;
        let r = reports.clone();
        drive_until("the EMFILE report", || !r.borrow().is_empty()).await?;
        // Both listening sockets have a pending connection; give the loop
        // many iterations to (wrongly) try again.
        drive(100).await?;

        assert_eq!(
            *reports.borrow(),
            vec![(
                "socket.accept() out of system resource".to_string(),
                Some(emfile())
            )],
            "one report: the second listening socket did not try while paused"
        );
        assert_eq!(
            ev.stats().timers,
            base_timers + 1,
            "exactly one retry timer scheduled"
        );
        assert_eq!(server.active_connections(), 0);
        assert!(accepted.borrow().is_empty());

        // fds are available again, but accepting stays paused until the
        // retry: no accept happens on its own (no busy retry).
        drop(hog);
        drive(100).await?;
        assert!(accepted.borrow().is_empty(), "accepted before the retry");
        assert_eq!(reports.borrow().len(), 1);
        clock.advance(ACCEPT_RETRY_DELAY - Duration::from_millis(1));
        drive(20).await?;
        assert!(accepted.borrow().is_empty(), "the retry came early");

        // The retry: both pending clients are accepted and served.
        clock.advance(Duration::from_millis(1));
        let (ta, tb) = (a.thread, b.thread);
        drive_until("both clients served", || {
            ta.is_finished() && tb.is_finished()
        })
        .await?;
        let echo_a = ta.join().map_err(|_| Error::msg("client a panicked"))??;
        let echo_b = tb.join().map_err(|_| Error::msg("client b panicked"))??;
        assert_eq!(echo_a, b"ping-a");
        assert_eq!(echo_b, b"ping-b");
        assert_eq!(accepted.borrow().len(), 2);
        assert_eq!(reports.borrow().len(), 1, "no failure after the retry");
        assert_eq!(ev.stats().timers, base_timers, "the retry timer is spent");
        drop(limit);

        // The clients are gone: their connections close; the server is
        // still accepting.
        let s = server.clone();
        drive_until("connections closed", || s.active_connections() == 0).await?;
        for rec in accepted.borrow().iter() {
            rec.assert_complete();
        }
        assert!(server.is_serving());
        server.close();
        Ok::<_, Error>(())
    });
    ev.close().expect("close the loop");
    if let Err(err) = result {
        panic!("scenario failed: {err}");
    }
    // The limit is back (the guard restored it, also on failure).
    assert!(File::open("/dev/null").is_ok());
}
