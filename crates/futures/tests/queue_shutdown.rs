//! `Queue::shutdown(true)` drops the items left in the queue after the
//! queue's own borrow has ended, so an item whose `Drop` uses the queue
//! (reads its size, puts a replacement back) does not hit a `RefCell`
//! borrow panic.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use loop_futures::{Error, Queue};
use support::run_test;

/// An item that, when dropped, records the queue's size as it sees it.
struct Watcher {
    queue: Rc<RefCell<Option<Queue<Watcher>>>>,
    seen: Rc<RefCell<Vec<usize>>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(queue) = self.queue.borrow().as_ref() {
            self.seen.borrow_mut().push(queue.qsize());
        }
    }
}

#[test]
fn items_dropped_by_an_immediate_shutdown_may_use_the_queue() {
    run_test(async {
        let q: Queue<Watcher> = Queue::new(0);
        let slot = Rc::new(RefCell::new(Some(q.clone())));
        let seen = Rc::new(RefCell::new(Vec::new()));
        for _ in 0..3 {
            let item = Watcher {
                queue: slot.clone(),
                seen: seen.clone(),
            };
            q.put_nowait(item).map_err(|(_, err)| err)?;
        }
        assert_eq!(q.qsize(), 3);
        q.shutdown(true);
        // Each drop saw the queue already emptied, and nothing panicked.
        assert_eq!(*seen.borrow(), vec![0, 0, 0]);
        assert_eq!(q.qsize(), 0);
        assert!(q.is_shutdown());
        slot.borrow_mut().take();
        Ok::<(), Error>(())
    });
}
