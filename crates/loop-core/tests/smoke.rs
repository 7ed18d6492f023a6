//! Quick end-to-end checks of the loop's main paths.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use loop_core::{EventLoop, ManualClock};

#[test]
fn smoke_call_soon_timers_threadsafe_reader_panic() {
    let clock = ManualClock::new();
    let ev = EventLoop::builder()
        .manual_clock(clock.clone())
        .build()
        .unwrap();
    let log = Rc::new(RefCell::new(Vec::<String>::new()));
    let l = log.clone();
    ev.call_later(Duration::from_secs(10), move |_| {
        l.borrow_mut().push("t10".into())
    })
    .unwrap();
    let l = log.clone();
    ev.call_later(Duration::from_secs(1), move |_| {
        l.borrow_mut().push("t1".into())
    })
    .unwrap();
    let l = log.clone();
    ev.call_soon(move |_| l.borrow_mut().push("soon".into()))
        .unwrap();
    ev.call_soon(|_| panic!("boom")).unwrap();
    let errors = Rc::new(RefCell::new(Vec::new()));
    let e = errors.clone();
    ev.set_exception_handler(Some(
        move |_: &EventLoop, ctx: loop_core::ExceptionContext| {
            e.borrow_mut()
                .push(ctx.panic_message().unwrap_or("").to_string())
        },
    ));
    let (mut a, b) = UnixStream::pair().unwrap();
    b.set_nonblocking(true).unwrap();
    a.write_all(b"0123456789").unwrap();
    let l = log.clone();
    let reader = b.try_clone().unwrap();
    let mut reader = Some(reader);
    ev.add_reader(&b, move |ev| {
        let mut byte = [0u8; 1];
        match reader.as_mut().unwrap().read(&mut byte) {
            Ok(1) => l.borrow_mut().push(format!("r{}", byte[0] as char)),
            _ => {
                ev.remove_reader(reader.as_ref().unwrap());
            }
        }
    })
    .unwrap();
    let remote = ev.remote();
    std::thread::spawn(move || remote.call_soon_threadsafe(|ev| ev.stop()).unwrap())
        .join()
        .unwrap();
    ev.run_forever().unwrap();
    ev.call_later(Duration::from_secs(20), |ev| ev.stop())
        .unwrap();
    ev.run_forever().unwrap();
    let log = log.borrow().clone();
    assert_eq!(
        log.iter().filter(|s| s.starts_with('r')).count(),
        10,
        "{log:?}"
    );
    let t1 = log.iter().position(|s| s == "t1").expect("t1 ran");
    let t10 = log.iter().position(|s| s == "t10").expect("t10 ran");
    assert!(t1 < t10, "{log:?}");
    assert_eq!(*errors.borrow(), ["boom"]);
    ev.close().unwrap();
    assert!(ev.call_soon(|_| {}).is_err());
}
