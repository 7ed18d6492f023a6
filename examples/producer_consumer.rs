//! Producers and consumers on a bounded [`Queue`](tulip::Queue): two
//! producers `put` numbered items (waiting whenever the queue is full),
//! three consumers `get` them and call `task_done`, `join` waits until
//! every item was processed, and `shutdown` then ends the consumers (their
//! `get` fails with [`QueueShutDown`](tulip::QueueShutDown)) — asyncio's
//! queue pattern, including 3.13's `Queue.shutdown`.
//!
//! It prints the throughput and checks that every item was consumed
//! exactly once and that the queue never held more than `maxsize` items.
//!
//! ```text
//! cargo run --release --example producer_consumer -- [--items 100000] [--maxsize 16]
//! ```

#![allow(clippy::print_stdout)]

use examples::flag;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use tulip::prelude::*;
use tulip::{Queue, QueueShutDown};

const PRODUCERS: usize = 2;
const CONSUMERS: usize = 3;

/// What the consumers record, to check the run afterwards.
struct Tally {
    /// How many times each item was consumed.
    times_consumed: RefCell<Vec<u8>>,
    /// The most items seen in the queue.
    max_qsize: Cell<usize>,
}

/// Puts `count` items, numbered from `first`.
async fn producer(queue: Queue<usize>, first: usize, count: usize) -> Result<usize, Error> {
    for item in first..first + count {
        queue.put(item).await?;
    }
    Ok(count)
}

/// Takes items until the queue is shut down; returns how many it took.
async fn consumer(queue: Queue<usize>, tally: Rc<Tally>) -> Result<usize, Error> {
    let mut taken = 0;
    loop {
        let item = match queue.get().await {
            Ok(item) => item,
            Err(err) if err.downcast_ref::<QueueShutDown>().is_some() => return Ok(taken),
            Err(err) => return Err(err),
        };
        tally
            .max_qsize
            .set(tally.max_qsize.get().max(queue.qsize() + 1));
        tally.times_consumed.borrow_mut()[item] += 1;
        taken += 1;
        // Some "work" now and then, so the consumers interleave.
        if item % 7 == 0 {
            yield_now().await?;
        }
        queue.task_done()?;
    }
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let per_producer: usize = flag(&args, "--items", 100_000).map_err(Error::msg)?;
    let maxsize: usize = flag(&args, "--maxsize", 16).map_err(Error::msg)?.max(1);
    // Each item gets a counter: refuse a count that does not fit in memory
    // rather than abort on the allocation.
    let total = per_producer
        .checked_mul(PRODUCERS)
        .filter(|&n| n <= 100_000_000)
        .ok_or_else(|| {
            Error::msg(format!(
                "--items {per_producer}: at most {} per producer",
                100_000_000 / PRODUCERS
            ))
        })?;

    tulip::run(async move {
        let queue: Queue<usize> = Queue::new(maxsize);
        let tally = Rc::new(Tally {
            times_consumed: RefCell::new(vec![0; total]),
            max_qsize: Cell::new(0),
        });
        let started = Instant::now();
        let consumers = (0..CONSUMERS)
            .map(|_| create_task(consumer(queue.clone(), tally.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let producers = (0..PRODUCERS)
            .map(|p| create_task(producer(queue.clone(), p * per_producer, per_producer)))
            .collect::<Result<Vec<_>, _>>()?;
        for producer in producers {
            producer.await?;
        }
        // Every item put has been processed (task_done) once join returns.
        queue.join().await?;
        let elapsed = started.elapsed();
        // The consumers are waiting in get(): shutdown wakes them with
        // QueueShutDown, and a late put is refused.
        queue.shutdown(false);
        let mut per_consumer = Vec::new();
        for consumer in consumers {
            per_consumer.push(consumer.await?);
        }
        let late_put = queue.put(usize::MAX).await;

        let times = tally.times_consumed.borrow();
        let missing = times.iter().filter(|&&n| n == 0).count();
        let repeated = times.iter().filter(|&&n| n > 1).count();
        println!(
            "{total} items from {PRODUCERS} producers through a queue of maxsize {maxsize} \
             to {CONSUMERS} consumers in {:.1} ms: {:.0} items/s",
            elapsed.as_secs_f64() * 1e3,
            total as f64 / elapsed.as_secs_f64()
        );
        println!("items per consumer: {per_consumer:?}");
        println!(
            "consumed exactly once: {} of {total} ({missing} missing, {repeated} repeated); \
             most items queued at once: {}",
            total - missing - repeated,
            tally.max_qsize.get()
        );
        match &late_put {
            Err(err) if err.downcast_ref::<QueueShutDown>().is_some() => {
                println!("put after shutdown: refused ({err})");
            }
            other => return Err(Error::msg(format!("put after shutdown: {other:?}"))),
        }
        if missing > 0
            || repeated > 0
            || per_consumer.iter().sum::<usize>() != total
            || tally.max_qsize.get() > maxsize
        {
            return Err(Error::msg("items were lost, repeated or over the bound"));
        }
        Ok::<_, Error>(())
    })
}
