//! Task-local values (`ContextVar`): what a task sets is seen by the task
//! and by the callbacks it schedules; a child task gets a copy.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use loop_core::{EventLoop, ManualClock};
use loop_futures::{ContextVar, Error, EventLoopExt, yield_now};

fn manual_loop() -> EventLoop {
    EventLoop::builder()
        .manual_clock(ManualClock::new())
        .build()
        .unwrap()
}

#[test]
fn callbacks_scheduled_by_a_task_see_its_values_at_scheduling_time() {
    let ev = manual_loop();
    let var = ContextVar::new("user");
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (ev2, var2, seen2) = (ev.clone(), var.clone(), seen.clone());
    ev.run_until_complete(async move {
        var2.set("alice");
        let (v, s) = (var2.clone(), seen2.clone());
        ev2.call_soon(move |_| s.borrow_mut().push(("soon", v.get())))?;
        let (v, s) = (var2.clone(), seen2.clone());
        ev2.call_later(Duration::from_secs(1), move |_| {
            s.borrow_mut().push(("later", v.get()))
        })?;
        var2.set("bob");
        loop_futures::sleep(Duration::from_secs(2)).await?;
        seen2.borrow_mut().push(("task", var2.get()));
        Ok::<_, Error>(())
    })
    .unwrap();
    assert_eq!(
        *seen.borrow(),
        [
            ("soon", Some("alice")),
            ("later", Some("alice")),
            ("task", Some("bob"))
        ]
    );
    // The task's values did not leak into the thread's top-level context.
    assert_eq!(var.get(), None);
}

#[test]
fn child_tasks_get_a_copy_and_top_level_values_are_inherited() {
    let ev = manual_loop();
    let var = ContextVar::with_default("level", 0u8);
    var.set(1);
    let (ev2, var2) = (ev.clone(), var.clone());
    let (parent_after, child_saw, child_after) = ev
        .run_until_complete(async move {
            assert_eq!(var2.get(), Some(1), "top-level value not inherited");
            let v = var2.clone();
            let child = ev2.create_task(async move {
                let saw = v.get();
                v.set(3);
                yield_now().await?;
                Ok::<_, Error>((saw, v.get()))
            })?;
            var2.set(2);
            let (saw, after) = child.await?;
            Ok::<_, Error>((var2.get(), saw, after))
        })
        .unwrap();
    assert_eq!(parent_after, Some(2));
    assert_eq!(
        child_saw,
        Some(1),
        "the child should see its creator's value at creation"
    );
    assert_eq!(child_after, Some(3));
    assert_eq!(
        var.get(),
        Some(1),
        "tasks must not write back into the top-level context"
    );
}

#[test]
fn reset_restores_the_previous_value_and_defaults_apply() {
    let var = ContextVar::with_default("mode", "default");
    assert_eq!(var.get(), Some("default"));
    let token = var.set("a");
    let inner = var.set("b");
    assert_eq!(var.get(), Some("b"));
    var.reset(inner);
    assert_eq!(var.get(), Some("a"));
    var.reset(token);
    assert_eq!(var.get(), Some("default"));
    let other: ContextVar<&str> = ContextVar::new("other");
    let foreign = other.set("x");
    var.reset(foreign);
    assert_eq!(
        var.get(),
        Some("default"),
        "a token of another variable must be ignored"
    );
    assert_eq!(other.get(), Some("x"));
}
