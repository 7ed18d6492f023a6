//! Helpers shared by the transport behaviour tests:
//!
//! * [`Recorder`]: a protocol that logs every callback, in order, into a
//!   shared [`Rec`] (an `Rc<RefCell<Vec<Event>>>` plus the transport), with
//!   optional [`Hooks`] to react inside a callback;
//! * [`TestServer`], [`connect`] and [`pair`]: a server and clients on
//!   127.0.0.1, port 0;
//! * [`Harness`]: a loop whose runs are bounded by a watchdog timer (the test
//!   fails instead of hanging) and whose exception handler records every
//!   report (unexpected reports fail the test when the harness is dropped);
//! * [`manual_loop`], [`run_bounded`], [`run_briefly`]: a loop on virtual
//!   time and bounded runs of it, for the stream reader tests;
//! * [`wait_until`], [`capture_logs`], [`pattern`];
//! * [`Parked`]: a streams server that only records each client's reader
//!   and writer, so the test decides when the server side reads.

// Each test crate that includes this module uses only part of it.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::future::Future as StdFuture;
use std::io;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loop_core::{EventLoop, ExceptionContext, ManualClock};
use loop_futures::{Error, EventLoopExt, sleep};
use loop_transports::{
    BaseProtocol, ConnectOptions, Protocol, Server, ServerOptions, Transport, create_connection,
    create_server,
};

/// How long one [`Harness::run`] may take before the watchdog fails it.
pub(crate) const WATCHDOG: Duration = Duration::from_secs(10);

/// How long [`wait_until`] waits for its condition.
pub(crate) const WAIT_LIMIT: Duration = Duration::from_secs(5);

/// One protocol callback, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// `connection_made`.
    Made,
    /// `data_received` / `buffer_updated` with these bytes.
    Data(Vec<u8>),
    /// `eof_received`.
    Eof,
    /// `connection_lost`, with the error's kind if there was one.
    Lost(Option<io::ErrorKind>),
    /// `pause_writing`.
    Pause,
    /// `resume_writing`.
    Resume,
    /// A point a hook recorded (to check what ran before what).
    Mark(&'static str),
}

/// The shared log of one connection's protocol and its transport.
#[derive(Clone, Default)]
pub(crate) struct Rec {
    /// Every callback, in order.
    pub(crate) log: Rc<RefCell<Vec<Event>>>,
    transport: Rc<RefCell<Option<Transport>>>,
}

impl Rec {
    pub(crate) fn push(&self, event: Event) {
        self.log.borrow_mut().push(event);
    }

    pub(crate) fn mark(&self, mark: &'static str) {
        self.push(Event::Mark(mark));
    }

    pub(crate) fn events(&self) -> Vec<Event> {
        self.log.borrow().clone()
    }

    /// The events without the data payloads and marks: the callback
    /// grammar as a compact list (consecutive `Data` folded into one).
    pub(crate) fn shape(&self) -> Vec<Event> {
        let mut out: Vec<Event> = Vec::new();
        for event in self.log.borrow().iter() {
            match event {
                Event::Mark(_) => {}
                Event::Data(_) => {
                    if out.last() != Some(&Event::Data(Vec::new())) {
                        out.push(Event::Data(Vec::new()));
                    }
                }
                other => out.push(other.clone()),
            }
        }
        out
    }

    /// The transport given to `connection_made`.
    pub(crate) fn transport(&self) -> Transport {
        self.transport
            .borrow()
            .clone()
            .expect("connection_made has not run")
    }

    pub(crate) fn data(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for event in self.log.borrow().iter() {
            if let Event::Data(d) = event {
                out.extend_from_slice(d);
            }
        }
        out
    }

    pub(crate) fn data_len(&self) -> usize {
        self.log
            .borrow()
            .iter()
            .map(|e| match e {
                Event::Data(d) => d.len(),
                _ => 0,
            })
            .sum()
    }

    pub(crate) fn count(&self, event: &Event) -> usize {
        self.log.borrow().iter().filter(|e| *e == event).count()
    }

    pub(crate) fn made(&self) -> bool {
        self.count(&Event::Made) > 0
    }

    pub(crate) fn got_eof(&self) -> bool {
        self.count(&Event::Eof) > 0
    }

    /// `Some(err_kind)` once `connection_lost` ran.
    pub(crate) fn lost(&self) -> Option<Option<io::ErrorKind>> {
        self.log.borrow().iter().find_map(|e| match e {
            Event::Lost(k) => Some(*k),
            _ => None,
        })
    }

    pub(crate) fn is_lost(&self) -> bool {
        self.lost().is_some()
    }

    /// Asserts the callback grammar:
    /// `Made (Data | Pause | Resume)* Eof? (Pause | Resume)* Lost?`, with
    /// `Pause` / `Resume` alternating (pause first), nothing after `Lost`.
    pub(crate) fn assert_grammar(&self) {
        if let Err(why) = check_grammar(&self.log.borrow()) {
            panic!("bad callback grammar: {why}; events: {:?}", self.shape());
        }
    }

    /// As [`assert_grammar`](Rec::assert_grammar), and `connection_lost`
    /// ran (exactly once, last).
    pub(crate) fn assert_complete(&self) {
        self.assert_grammar();
        assert!(
            self.is_lost(),
            "connection_lost never ran: {:?}",
            self.shape()
        );
    }
}

fn check_grammar(events: &[Event]) -> Result<(), String> {
    let mut made = false;
    let mut eof = false;
    let mut lost = false;
    let mut paused = false;
    for (i, event) in events.iter().enumerate() {
        if lost && !matches!(event, Event::Mark(_)) {
            return Err(format!("{event:?} at {i} after connection_lost"));
        }
        if !made && !matches!(event, Event::Made | Event::Mark(_)) {
            return Err(format!("{event:?} at {i} before connection_made"));
        }
        match event {
            Event::Made if made => return Err(format!("second connection_made at {i}")),
            Event::Made => made = true,
            Event::Data(d) if d.is_empty() => return Err(format!("empty data_received at {i}")),
            Event::Data(_) if eof => return Err(format!("data_received at {i} after EOF")),
            Event::Data(_) => {}
            Event::Eof if eof => return Err(format!("second eof_received at {i}")),
            Event::Eof => eof = true,
            Event::Pause if paused => return Err(format!("pause_writing twice at {i}")),
            Event::Pause => paused = true,
            Event::Resume if !paused => return Err(format!("resume_writing unpaused at {i}")),
            Event::Resume => paused = false,
            Event::Lost(_) => lost = true,
            Event::Mark(_) => {}
        }
    }
    Ok(())
}

type Hook = Box<dyn FnMut(&Rec, &Transport)>;
type DataHook = Box<dyn FnMut(&Rec, &Transport, &[u8])>;
type EofHook = Box<dyn FnMut(&Rec, &Transport) -> bool>;

/// What a [`Recorder`] does inside its callbacks (after logging them).
#[derive(Default)]
pub(crate) struct Hooks {
    made: Option<Hook>,
    data: Option<DataHook>,
    eof: Option<EofHook>,
    pause: Option<Hook>,
    resume: Option<Hook>,
}

impl Hooks {
    pub(crate) fn new() -> Hooks {
        Hooks::default()
    }

    /// Writes every chunk back.
    pub(crate) fn echo() -> Hooks {
        Hooks::new().on_data(|_, t, d| t.write(d))
    }

    pub(crate) fn on_made(mut self, f: impl FnMut(&Rec, &Transport) + 'static) -> Hooks {
        self.made = Some(Box::new(f));
        self
    }

    pub(crate) fn on_data(mut self, f: impl FnMut(&Rec, &Transport, &[u8]) + 'static) -> Hooks {
        self.data = Some(Box::new(f));
        self
    }

    /// `eof_received`'s answer (the default is false: close).
    pub(crate) fn on_eof(mut self, f: impl FnMut(&Rec, &Transport) -> bool + 'static) -> Hooks {
        self.eof = Some(Box::new(f));
        self
    }

    pub(crate) fn on_pause(mut self, f: impl FnMut(&Rec, &Transport) + 'static) -> Hooks {
        self.pause = Some(Box::new(f));
        self
    }

    pub(crate) fn on_resume(mut self, f: impl FnMut(&Rec, &Transport) + 'static) -> Hooks {
        self.resume = Some(Box::new(f));
        self
    }
}

/// A protocol that logs every callback into its [`Rec`], then runs its
/// hook.
pub(crate) struct Recorder {
    pub(crate) rec: Rec,
    hooks: Hooks,
}

impl Recorder {
    pub(crate) fn new(rec: Rec, hooks: Hooks) -> Recorder {
        Recorder { rec, hooks }
    }

    fn transport(&self) -> Transport {
        self.rec.transport()
    }
}

impl BaseProtocol for Recorder {
    fn connection_made(&mut self, transport: Transport) {
        self.rec.push(Event::Made);
        *self.rec.transport.borrow_mut() = Some(transport.clone());
        if let Some(hook) = &mut self.hooks.made {
            hook(&self.rec, &transport);
        }
    }

    fn connection_lost(&mut self, exc: Option<io::Error>) {
        self.rec.push(Event::Lost(exc.map(|e| e.kind())));
    }

    fn pause_writing(&mut self) {
        self.rec.push(Event::Pause);
        let t = self.transport();
        if let Some(hook) = &mut self.hooks.pause {
            hook(&self.rec, &t);
        }
    }

    fn resume_writing(&mut self) {
        self.rec.push(Event::Resume);
        let t = self.transport();
        if let Some(hook) = &mut self.hooks.resume {
            hook(&self.rec, &t);
        }
    }
}

impl Protocol for Recorder {
    fn data_received(&mut self, data: &[u8]) {
        self.rec.push(Event::Data(data.to_vec()));
        let t = self.transport();
        if let Some(hook) = &mut self.hooks.data {
            hook(&self.rec, &t, data);
        }
    }

    fn eof_received(&mut self) -> bool {
        self.rec.push(Event::Eof);
        let t = self.transport();
        match &mut self.hooks.eof {
            Some(hook) => hook(&self.rec, &t),
            None => false,
        }
    }
}

/// A server on 127.0.0.1 (port 0) whose connections are [`Recorder`]s.
pub(crate) struct TestServer {
    pub(crate) server: Server,
    pub(crate) port: u16,
    accepted: Rc<RefCell<Vec<Rec>>>,
}

impl TestServer {
    /// Starts a server; `hooks` makes each connection's hooks.
    pub(crate) async fn start(
        ev: &EventLoop,
        hooks: impl Fn() -> Hooks + 'static,
    ) -> Result<TestServer, Error> {
        TestServer::start_with(ev, hooks, ServerOptions::default()).await
    }

    pub(crate) async fn start_with(
        ev: &EventLoop,
        hooks: impl Fn() -> Hooks + 'static,
        options: ServerOptions,
    ) -> Result<TestServer, Error> {
        let accepted: Rc<RefCell<Vec<Rec>>> = Rc::default();
        let list = accepted.clone();
        let server = create_server(
            ev,
            move || {
                let rec = Rec::default();
                list.borrow_mut().push(rec.clone());
                Recorder::new(rec, hooks())
            },
            &["127.0.0.1"],
            0,
            options,
        )
        .await?;
        let sockets = server.sockets();
        assert_eq!(sockets.len(), 1, "one listening socket for 127.0.0.1");
        let port = sockets[0].port();
        assert_ne!(port, 0, "port 0 resolves to a real port");
        Ok(TestServer {
            server,
            port,
            accepted,
        })
    }

    /// The server-side connections accepted so far, in order.
    pub(crate) fn accepted(&self) -> Vec<Rec> {
        self.accepted.borrow().clone()
    }

    /// Waits until the `index`-th accepted connection ran
    /// `connection_made`, and returns it.
    pub(crate) async fn wait_accepted(&self, index: usize) -> Result<Rec, Error> {
        let accepted = self.accepted.clone();
        wait_until("a server connection", move || {
            accepted.borrow().get(index).is_some_and(Rec::made)
        })
        .await?;
        Ok(self.accepted()[index].clone())
    }
}

/// Connects a [`Recorder`] with `hooks` to 127.0.0.1:`port`.
pub(crate) async fn connect(
    ev: &EventLoop,
    port: u16,
    hooks: Hooks,
) -> Result<(Transport, Rec), Error> {
    let rec = Rec::default();
    let r = rec.clone();
    let (transport, protocol) = create_connection(
        ev,
        move || Recorder::new(r, hooks),
        Some("127.0.0.1"),
        Some(port),
        ConnectOptions::default(),
    )
    .await?;
    assert!(Rc::ptr_eq(&protocol.borrow().rec.log, &rec.log));
    Ok((transport, rec))
}

/// A server with one connected client.
pub(crate) struct Pair {
    pub(crate) server: TestServer,
    /// The client's transport and log.
    pub(crate) client_t: Transport,
    pub(crate) client: Rec,
    /// The server side of the connection.
    pub(crate) server_t: Transport,
    pub(crate) served: Rec,
}

/// Starts a server (each connection with `server_hooks()`) and connects a
/// client with `client_hooks`; returns once both sides ran
/// `connection_made`.
pub(crate) async fn pair(
    ev: &EventLoop,
    server_hooks: impl Fn() -> Hooks + 'static,
    client_hooks: Hooks,
) -> Result<Pair, Error> {
    let server = TestServer::start(ev, server_hooks).await?;
    let (client_t, client) = connect(ev, server.port, client_hooks).await?;
    let served = server.wait_accepted(0).await?;
    let server_t = served.transport();
    Ok(Pair {
        server,
        client_t,
        client,
        server_t,
        served,
    })
}

/// Polls `cond` every millisecond until it holds; an error after
/// [`WAIT_LIMIT`] (the loop keeps running I/O meanwhile).
pub(crate) async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) -> Result<(), Error> {
    let ev = loop_core::get_running_loop()?;
    let deadline = ev.time() + WAIT_LIMIT;
    while !cond() {
        if ev.time() >= deadline {
            return Err(Error::msg(format!("timed out waiting for {what}")));
        }
        sleep(Duration::from_millis(1)).await?;
    }
    Ok(())
}

/// Runs `n` loop iterations (`yield_now` n times).
pub(crate) async fn iterations(n: usize) -> Result<(), Error> {
    for _ in 0..n {
        loop_futures::yield_now().await?;
    }
    Ok(())
}

/// A loop for one test: bounded runs and recorded exception reports.
pub(crate) struct Harness {
    pub(crate) ev: EventLoop,
    reports: Rc<RefCell<Vec<String>>>,
}

impl Harness {
    pub(crate) fn new() -> Harness {
        let ev = EventLoop::builder()
            .debug(false)
            .build()
            .expect("create loop");
        let reports: Rc<RefCell<Vec<String>>> = Rc::default();
        let sink = reports.clone();
        ev.set_exception_handler(Some(move |_: &EventLoop, ctx: ExceptionContext| {
            let mut text = ctx.message().to_string();
            if let Some(panic) = ctx.panic_message() {
                text.push_str(": ");
                text.push_str(panic);
            }
            if let Some(err) = ctx.error() {
                text.push_str(": ");
                text.push_str(&err.to_string());
            }
            sink.borrow_mut().push(text);
        }));
        Harness { ev, reports }
    }

    /// Runs `scenario` to completion on the loop, failing the test if it
    /// takes longer than [`WATCHDOG`] or returns an error; a panic inside
    /// the scenario is resumed here.
    #[track_caller]
    pub(crate) fn run<F, Fut, T>(&self, scenario: F) -> T
    where
        F: FnOnce(EventLoop) -> Fut,
        Fut: StdFuture<Output = Result<T, Error>> + 'static,
        T: 'static,
    {
        self.run_within(WATCHDOG, scenario)
    }

    /// [`run`](Harness::run) with another watchdog limit.
    #[track_caller]
    pub(crate) fn run_within<F, Fut, T>(&self, limit: Duration, scenario: F) -> T
    where
        F: FnOnce(EventLoop) -> Fut,
        Fut: StdFuture<Output = Result<T, Error>> + 'static,
        T: 'static,
    {
        let fired = Rc::new(Cell::new(false));
        let flag = fired.clone();
        let watchdog = self
            .ev
            .call_later(limit, move |ev| {
                flag.set(true);
                ev.stop();
            })
            .expect("schedule the watchdog");
        let result = self.ev.run_until_complete(scenario(self.ev.clone()));
        watchdog.cancel();
        assert!(
            !fired.get(),
            "watchdog: the scenario did not finish within {limit:?}"
        );
        match result {
            Ok(value) => value,
            Err(Error::Panic(panic)) => match panic.take_payload() {
                Some(payload) => std::panic::resume_unwind(payload),
                None => panic!("scenario panicked: {panic}"),
            },
            Err(err) => panic!("scenario failed: {err}"),
        }
    }

    /// Takes the exception reports so far (so the drop check passes).
    pub(crate) fn take_reports(&self) -> Vec<String> {
        std::mem::take(&mut *self.reports.borrow_mut())
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.ev.close();
        if !std::thread::panicking() {
            let reports = self.reports.borrow();
            assert!(
                reports.is_empty(),
                "unexpected exception reports: {reports:?}"
            );
        }
    }
}

/// `len` bytes of a non-repeating-at-small-scale pattern (so a lost,
/// duplicated or reordered chunk shows up).
pub(crate) fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8) ^ (i >> 16)) as u8)
        .collect()
}

/// Sets a small kernel send buffer so that writes get buffered by the
/// transport quickly.
pub(crate) fn small_send_buffer(t: &Transport) {
    t.with_socket(|s| {
        s.expect("socket open")
            .set_send_buffer_size(4096)
            .expect("SO_SNDBUF")
    });
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
pub(crate) struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Lines containing `needle`.
    pub(crate) fn count(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(needle)).count()
    }
}

/// Runs `f` with a `tracing` subscriber on this thread that writes into
/// the returned buffer (warnings and above).
pub(crate) fn capture_logs<R>(f: impl FnOnce(&LogBuf) -> R) -> R {
    let buf = LogBuf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || f(&buf))
}

/// A streams server whose handler only records each client's reader and
/// writer (so the test decides when the server side reads).
pub(crate) struct Parked {
    pub(crate) server: loop_transports::Server,
    pub(crate) port: u16,
    clients: Rc<RefCell<Vec<(loop_transports::StreamReader, loop_transports::StreamWriter)>>>,
}

impl Parked {
    /// Starts one on 127.0.0.1, port 0, with the readers' `limit`.
    pub(crate) async fn start(
        ev: &EventLoop,
        limit: Option<usize>,
    ) -> Result<Parked, loop_futures::Error> {
        let clients: Rc<RefCell<Vec<_>>> = Rc::default();
        let list = clients.clone();
        let server = loop_transports::start_server_with(
            ev,
            move |reader, writer| list.borrow_mut().push((reader, writer)),
            &["127.0.0.1"],
            0,
            loop_transports::StreamOptions {
                limit,
                ..loop_transports::StreamOptions::default()
            },
        )
        .await?;
        let port = server.sockets()[0].port();
        Ok(Parked {
            server,
            port,
            clients,
        })
    }

    /// Opens a connection to it: the client side (from `open_connection`)
    /// and, once accepted, the server side. For tests that open one
    /// connection at a time (the server side is the next one accepted).
    pub(crate) async fn connect(
        &self,
        ev: &EventLoop,
    ) -> Result<
        (
            (loop_transports::StreamReader, loop_transports::StreamWriter),
            (loop_transports::StreamReader, loop_transports::StreamWriter),
        ),
        loop_futures::Error,
    > {
        let index = self.clients.borrow().len();
        let client = loop_transports::open_connection(
            ev,
            "127.0.0.1",
            self.port,
            loop_transports::StreamOptions::default(),
        )
        .await?;
        let server = self.client(index).await?;
        Ok((client, server))
    }

    /// The server side of the `index`-th connection, once accepted.
    pub(crate) async fn client(
        &self,
        index: usize,
    ) -> Result<(loop_transports::StreamReader, loop_transports::StreamWriter), loop_futures::Error>
    {
        let clients = self.clients.clone();
        wait_until("the server side of the connection", move || {
            clients.borrow().len() > index
        })
        .await?;
        Ok(self.clients.borrow()[index].clone())
    }
}

/// A loop on a manual clock: virtual time, so an idle loop jumps straight
/// to its next timer (a watchdog ends a stuck run at once).
pub(crate) fn manual_loop() -> EventLoop {
    EventLoop::builder()
        .manual_clock(ManualClock::new())
        .build()
        .expect("create a manual-clock loop")
}

/// `loop.run_until_complete(fut)`, stopped by a watchdog timer `limit`
/// after it starts (then the run ends with an error instead of hanging).
pub(crate) fn run_bounded<T, F>(ev: &EventLoop, limit: Duration, fut: F) -> Result<T, Error>
where
    T: 'static,
    F: StdFuture<Output = Result<T, Error>> + 'static,
{
    let watchdog = ev
        .call_later(limit, |ev| ev.stop())
        .expect("schedule the watchdog");
    let result = ev.run_until_complete(fut);
    watchdog.cancel();
    result
}

/// asyncio's `test_utils.run_briefly`: one short run of the loop.
pub(crate) fn run_briefly(ev: &EventLoop) {
    run_bounded(ev, WATCHDOG, async { loop_futures::yield_now().await }).expect("run briefly");
}
