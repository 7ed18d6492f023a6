//! `gather!` of mixed awaitables: cancelling the gather cancels a child
//! that is a tulip `Future` itself (asyncio's gather uses such objects as
//! its children), and the wrapper tasks of the plain coroutines, each
//! child by its own position.

mod support;

use loop_futures::{Error, EventLoopExt, Future};
use support::test_loop;

#[test]
fn cancelling_a_mixed_gather_cancels_each_child_in_place() {
    let ev = test_loop();
    let middle: Future<u32> = ev.create_future();
    let last: Future<u32> = ev.create_future();
    let outcome = ev
        .run_until_complete({
            let (middle, last) = (middle.clone(), last.clone());
            async move {
                let gathered = loop_futures::gather!(
                    std::future::pending::<Result<u32, Error>>(),
                    middle.clone(),
                    std::future::pending::<Result<u32, Error>>(),
                    last.clone()
                );
                // Cancelled before any child ran: a wrapper task cancelled
                // now would never reach its future, so only cancelling the
                // future itself (by its position) cancels it.
                assert!(gathered.cancel(Some("stop")));
                let result = gathered.await;
                Ok::<_, Error>(result.map(|_| ()))
            }
        })
        .unwrap();
    let err = outcome.unwrap_err();
    assert!(err.is_cancelled(), "{err:?}");
    // The futures themselves were cancelled, not only their wrapper tasks.
    assert!(middle.cancelled());
    assert!(last.cancelled());
    ev.close().unwrap();
}
