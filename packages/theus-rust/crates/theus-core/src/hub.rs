//! A broadcast hub (spec `08`, "The hub"): every receiver gets every message published after it
//! subscribed, in one order shared by all receivers, through its own bounded queue.
//!
//! - [`Policy::Lag`]: a full queue drops its **oldest** message and counts it; the next receive
//!   reports the exact count ([`RecvError::Lagged`]) and then continues with the oldest kept.
//! - [`Policy::Block`]: a publish waits until every `block` receiver it is for has room, then
//!   delivers to all at once (lossless backpressure).
//! - Topic filters ([`TopicFilter`], the glob rule of spec `08`) apply before a message is queued.
//!
//! Data structure: one `Mutex<VecDeque>` + two condition variables per receiver; a publish
//! delivers to every receiver under the hub's receiver-list lock, which serialises publishers
//! (every receiver sees the same order) and is never held while waiting. A shared ring
//! (tokio `broadcast` style) stores each message once, but per-receiver capacities, filters and
//! the `block` policy make per-receiver queues the simpler exact model; with one receiver both
//! cost one clone per message.
//!
//! The hub never drops a message or a waiter itself while a lock is held: everything that leaves
//! a queue, and every asynchronous waiter to wake, is handed to the caller in an [`Outbox`], so a
//! caller whose messages have destructors (Python objects) runs them after every lock is free.
//! Asynchronous waiters are opaque values `W` stored with a receiver until a message (or a close)
//! arrives; the caller wakes them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// What a receiver does when its queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Drop the oldest queued message and count it (the publisher never waits).
    Lag,
    /// Make the publisher wait for room (lossless).
    Block,
}

/// How long a call may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Not at all.
    No,
    /// Until this instant.
    Until(Instant),
    /// As long as it takes.
    Forever,
}

/// Why a publish did not deliver (the message comes back).
#[derive(Debug, PartialEq, Eq)]
pub enum PublishError<T> {
    /// The wait allowed ended first (a full `block` receiver, or another publisher busy).
    WouldBlock(T),
    /// The hub is closed.
    Closed(T),
}

/// Why a receive returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// Messages were dropped since the last report (policy `lag`): exactly this many.
    Lagged(u64),
    /// Nothing pending (for the waiting forms: within the wait allowed).
    Empty,
    /// The receiver (or its hub) is closed and its queue drained.
    Closed,
}

/// What a receive poll that may register an asynchronous waiter returned.
#[derive(Debug)]
pub enum Poll<W> {
    /// Messages were appended to the output; the unused waiter comes back.
    Ready(W),
    /// Nothing pending: the waiter is stored under this id until a message or a close.
    Registered(u64),
}

/// Messages handed back to the caller: the first two inline (a publish to one receiver hands
/// back at most the receiver's oldest message and its own copy), the others in a `Vec`.
#[derive(Debug)]
pub struct Garbage<T> {
    first: Option<T>,
    second: Option<T>,
    more: Vec<T>,
}

impl<T> Default for Garbage<T> {
    fn default() -> Self {
        Garbage {
            first: None,
            second: None,
            more: Vec::new(),
        }
    }
}

impl<T> Garbage<T> {
    /// Keep `value`.
    #[inline]
    pub fn push(&mut self, value: T) {
        if self.first.is_none() {
            self.first = Some(value);
        } else if self.second.is_none() {
            self.second = Some(value);
        } else {
            self.more.push(value);
        }
    }

    /// How many are kept.
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + usize::from(self.second.is_some()) + self.more.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop them all.
    pub fn clear(&mut self) {
        self.first = None;
        self.second = None;
        self.more.clear();
    }
}

/// Values the caller must drop or wake after a hub call, outside every hub lock.
#[derive(Debug)]
pub struct Outbox<T, W> {
    /// Messages that left the hub (dropped oldest ones, undelivered ones).
    pub garbage: Garbage<T>,
    /// Asynchronous waiters to wake.
    pub wakers: Vec<W>,
}

/// A message the hub can carry: cloned once per receiver (make it cheap: an `Arc`), with an
/// optional topic for the receivers' filters.
pub trait Message: Clone {
    /// The topic filters match (spec `08`, Topics); `None`: reaches only unfiltered receivers.
    fn topic(&self) -> Option<&str> {
        None
    }
}

impl<T, W> Default for Outbox<T, W> {
    fn default() -> Self {
        Outbox {
            garbage: Garbage::default(),
            wakers: Vec::new(),
        }
    }
}

impl<T, W> Outbox<T, W> {
    /// A new, empty outbox.
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Lit(u8),
    Star,
    DoubleStar,
}

/// One topic pattern: `*` matches a run of characters other than `.`, `**` any run, every other
/// character itself; the pattern matches the whole topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    toks: Vec<Tok>,
    literal: Option<String>,
}

impl Glob {
    /// Compile a pattern.
    pub fn new(pattern: &str) -> Glob {
        let bytes = pattern.as_bytes();
        let mut toks = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'*' {
                if bytes.get(i + 1) == Some(&b'*') {
                    toks.push(Tok::DoubleStar);
                    i += 2;
                    while bytes.get(i) == Some(&b'*') {
                        i += 1; // `***` is `**`
                    }
                } else {
                    toks.push(Tok::Star);
                    i += 1;
                }
            } else {
                toks.push(Tok::Lit(bytes[i]));
                i += 1;
            }
        }
        let literal = toks
            .iter()
            .all(|t| matches!(t, Tok::Lit(_)))
            .then(|| pattern.to_owned());
        Glob { toks, literal }
    }

    /// Whether the whole `topic` matches (O(pattern × topic), no backtracking).
    pub fn matches(&self, topic: &str) -> bool {
        if let Some(lit) = &self.literal {
            return lit == topic;
        }
        let t = topic.as_bytes();
        // reach[j]: the tokens so far can match exactly t[..j].
        let mut reach = vec![false; t.len() + 1];
        let mut next = vec![false; t.len() + 1];
        reach[0] = true;
        for tok in &self.toks {
            match tok {
                Tok::Lit(b) => {
                    next[0] = false;
                    for j in 0..t.len() {
                        next[j + 1] = reach[j] && t[j] == *b;
                    }
                }
                Tok::Star => {
                    next[0] = reach[0];
                    for j in 0..t.len() {
                        next[j + 1] = reach[j + 1] || (next[j] && t[j] != b'.');
                    }
                }
                Tok::DoubleStar => {
                    next[0] = reach[0];
                    for j in 0..t.len() {
                        next[j + 1] = reach[j + 1] || next[j];
                    }
                }
            }
            std::mem::swap(&mut reach, &mut next);
            if !reach.iter().any(|&r| r) {
                return false;
            }
        }
        reach[t.len()]
    }
}

/// A receiver's topic filter: a message passes when its topic matches one of the patterns (a
/// message without a topic never passes; no pattern: nothing passes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicFilter {
    globs: Vec<Glob>,
}

impl TopicFilter {
    /// A filter of these patterns.
    pub fn new<I, S>(patterns: I) -> TopicFilter
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        TopicFilter {
            globs: patterns
                .into_iter()
                .map(|p| Glob::new(p.as_ref()))
                .collect(),
        }
    }

    /// Whether a message of this topic passes.
    pub fn accepts(&self, topic: Option<&str>) -> bool {
        match topic {
            Some(t) => self.globs.iter().any(|g| g.matches(t)),
            None => false,
        }
    }
}

struct State<T, W> {
    queue: VecDeque<T>,
    missed: u64,
    lagged: u64,
    closed: bool,
    waiters: Vec<(u64, W)>,
    next_waiter: u64,
}

struct Slot<T, W> {
    policy: Policy,
    capacity: usize,
    filter: Option<TopicFilter>,
    state: Mutex<State<T, W>>,
    readable: Condvar,
    writable: Condvar,
}

impl<T, W> Slot<T, W> {
    fn accepts(&self, topic: Option<&str>) -> bool {
        self.filter.as_ref().is_none_or(|f| f.accepts(topic))
    }

    /// Mark closed and wake every waiter (sync ones here, async ones into `out`).
    fn close_locked(&self, st: &mut State<T, W>, wakers: &mut Vec<W>) {
        st.closed = true;
        wakers.extend(st.waiters.drain(..).map(|(_, w)| w));
        self.readable.notify_all();
        self.writable.notify_all();
    }
}

struct Shared<T, W> {
    capacity: usize,
    slots: Mutex<Vec<Arc<Slot<T, W>>>>,
    closed: AtomicBool,
    filtered: AtomicUsize,
}

/// The broadcast hub. Cloning gives another handle on the same hub.
pub struct Hub<T, W> {
    shared: Arc<Shared<T, W>>,
}

impl<T, W> Clone for Hub<T, W> {
    fn clone(&self) -> Self {
        Hub {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// One subscription. Dropping it unsubscribes (no publisher waits for it any more) and drops
/// its pending messages.
pub struct Receiver<T, W> {
    slot: Arc<Slot<T, W>>,
    shared: Arc<Shared<T, W>>,
}

impl<T: Message, W> Hub<T, W> {
    /// A new hub; `capacity` (>= 1) is the default queue bound of its receivers.
    pub fn new(capacity: usize) -> Hub<T, W> {
        Hub {
            shared: Arc::new(Shared {
                capacity: capacity.max(1),
                slots: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
                filtered: AtomicUsize::new(0),
            }),
        }
    }

    /// The default receiver capacity.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Whether the hub is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Whether some live receiver has a topic filter (else topics need not be computed).
    pub fn has_filters(&self) -> bool {
        self.shared.filtered.load(Ordering::Relaxed) > 0
    }

    /// The number of live receivers.
    pub fn receiver_count(&self) -> usize {
        self.shared.slots.lock().len()
    }

    /// A new receiver (`None` capacity: the hub's). `None` when the hub is closed.
    pub fn subscribe(
        &self,
        policy: Policy,
        capacity: Option<usize>,
        filter: Option<TopicFilter>,
    ) -> Option<Receiver<T, W>> {
        let capacity = capacity.unwrap_or(self.shared.capacity).max(1);
        let filtered = filter.is_some();
        let slot = Arc::new(Slot {
            policy,
            capacity,
            filter,
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(capacity.min(1024)),
                missed: 0,
                lagged: 0,
                closed: false,
                waiters: Vec::new(),
                next_waiter: 0,
            }),
            readable: Condvar::new(),
            writable: Condvar::new(),
        });
        let mut slots = self.shared.slots.lock();
        if self.is_closed() {
            return None;
        }
        slots.push(Arc::clone(&slot));
        if filtered {
            self.shared.filtered.fetch_add(1, Ordering::Relaxed);
        }
        drop(slots);
        Some(Receiver {
            slot,
            shared: Arc::clone(&self.shared),
        })
    }

    /// Publish one message; returns how many receivers got it.
    pub fn publish(
        &self,
        message: T,
        wait: Wait,
        out: &mut Outbox<T, W>,
    ) -> Result<usize, PublishError<T>> {
        self.publish_serialised(message, wait, out)
    }

    /// Publish messages in order. Returns the sum of the per-message counts and, when not all
    /// were published, why (the unpublished ones stay in `messages`, from the front).
    pub fn publish_batch(
        &self,
        messages: &mut VecDeque<T>,
        wait: Wait,
        out: &mut Outbox<T, W>,
    ) -> (usize, Option<PublishError<()>>) {
        let mut total = 0;
        while let Some(message) = messages.pop_front() {
            match self.publish_serialised(message, wait, out) {
                Ok(n) => total += n,
                Err(PublishError::WouldBlock(m)) => {
                    messages.push_front(m);
                    return (total, Some(PublishError::WouldBlock(())));
                }
                Err(PublishError::Closed(m)) => {
                    messages.push_front(m);
                    return (total, Some(PublishError::Closed(())));
                }
            }
        }
        (total, None)
    }

    /// The body of a publish: under the list lock, either every `block` receiver the message is
    /// for has room and it is delivered to all at once, or the lock is released and the first
    /// full one awaited (then everything is checked again).
    fn publish_serialised(
        &self,
        message: T,
        wait: Wait,
        out: &mut Outbox<T, W>,
    ) -> Result<usize, PublishError<T>> {
        loop {
            let topic = message.topic();
            let slots = self.shared.slots.lock();
            if self.is_closed() {
                return Err(PublishError::Closed(message));
            }
            let mut full = None;
            for slot in slots.iter() {
                if slot.policy == Policy::Block && slot.accepts(topic) {
                    let st = slot.state.lock();
                    if !st.closed && st.queue.len() >= slot.capacity {
                        full = Some(Arc::clone(slot));
                        break;
                    }
                }
            }
            let Some(slot) = full else {
                let mut reached = 0;
                for slot in slots.iter() {
                    if !slot.accepts(topic) {
                        continue;
                    }
                    let mut st = slot.state.lock();
                    if st.closed {
                        continue;
                    }
                    if st.queue.len() >= slot.capacity {
                        // Policy::Lag (a full Block receiver was ruled out above)
                        if let Some(old) = st.queue.pop_front() {
                            out.garbage.push(old);
                        }
                        st.missed += 1;
                        st.lagged += 1;
                    }
                    st.queue.push_back(message.clone());
                    if !st.waiters.is_empty() {
                        out.wakers.extend(st.waiters.drain(..).map(|(_, w)| w));
                    }
                    drop(st);
                    slot.readable.notify_one();
                    reached += 1;
                }
                drop(slots);
                out.garbage.push(message);
                return Ok(reached);
            };
            drop(slots);
            let mut st = slot.state.lock();
            while !st.closed && st.queue.len() >= slot.capacity && !self.is_closed() {
                match wait {
                    Wait::No => return Err(PublishError::WouldBlock(message)),
                    Wait::Until(t) => {
                        if slot.writable.wait_until(&mut st, t).timed_out()
                            && !st.closed
                            && st.queue.len() >= slot.capacity
                        {
                            return Err(PublishError::WouldBlock(message));
                        }
                    }
                    Wait::Forever => slot.writable.wait(&mut st),
                }
            }
        }
    }

    /// Close the hub: every receiver is closed (pending messages stay drainable), every waiter
    /// woken; later publishes and subscribes fail. Idempotent.
    pub fn close(&self, out: &mut Outbox<T, W>) {
        let slots = {
            let mut slots = self.shared.slots.lock();
            self.shared.closed.store(true, Ordering::Release);
            self.shared.filtered.store(0, Ordering::Relaxed);
            std::mem::take(&mut *slots)
        };
        for slot in &slots {
            let mut st = slot.state.lock();
            slot.close_locked(&mut st, &mut out.wakers);
        }
    }
}

impl<T, W> Receiver<T, W> {
    /// The policy.
    pub fn policy(&self) -> Policy {
        self.slot.policy
    }

    /// The queue bound.
    pub fn capacity(&self) -> usize {
        self.slot.capacity
    }

    /// Messages pending.
    pub fn len(&self) -> usize {
        self.slot.state.lock().queue.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total messages dropped for this receiver so far.
    pub fn lagged(&self) -> u64 {
        self.slot.state.lock().lagged
    }

    /// Whether the receiver (or its hub) is closed.
    pub fn is_closed(&self) -> bool {
        self.slot.state.lock().closed
    }

    fn detach(&self) {
        let mut slots = self.shared.slots.lock();
        if let Some(i) = slots.iter().position(|s| Arc::ptr_eq(s, &self.slot)) {
            slots.swap_remove(i);
            if self.slot.filter.is_some() {
                self.shared.filtered.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Unsubscribe: no new message arrives, pending ones can still be drained, waiters are
    /// woken (into `out`). Idempotent.
    pub fn close(&self, out: &mut Outbox<T, W>) {
        self.detach();
        let mut st = self.slot.state.lock();
        self.slot.close_locked(&mut st, &mut out.wakers);
    }

    /// Take up to `max` (>= 1) pending messages into `out` (a lag report first, as an error).
    fn take(&self, st: &mut State<T, W>, max: usize, out: &mut Vec<T>) -> Result<(), RecvError> {
        if st.missed > 0 {
            return Err(RecvError::Lagged(std::mem::take(&mut st.missed)));
        }
        if st.queue.is_empty() {
            return Err(if st.closed {
                RecvError::Closed
            } else {
                RecvError::Empty
            });
        }
        let n = max.max(1).min(st.queue.len());
        out.extend(st.queue.drain(..n));
        if self.slot.policy == Policy::Block {
            self.slot.writable.notify_all(); // every waiting publisher re-checks
        }
        Ok(())
    }

    /// Receive up to `max` messages into `out`, waiting as allowed for at least one.
    /// Errors: a lag report, `Empty` when the wait ended, `Closed` once closed and drained.
    pub fn recv_many(&self, max: usize, out: &mut Vec<T>, wait: Wait) -> Result<(), RecvError> {
        let mut st = self.slot.state.lock();
        loop {
            match self.take(&mut st, max, out) {
                Err(RecvError::Empty) => {}
                done => return done,
            }
            match wait {
                Wait::No => return Err(RecvError::Empty),
                Wait::Until(t) => {
                    if self.slot.readable.wait_until(&mut st, t).timed_out() {
                        return match self.take(&mut st, max, out) {
                            Err(RecvError::Empty) => Err(RecvError::Empty),
                            done => done,
                        };
                    }
                }
                Wait::Forever => self.slot.readable.wait(&mut st),
            }
        }
    }

    /// Receive one message, waiting as allowed.
    pub fn recv(&self, wait: Wait) -> Result<T, RecvError> {
        let mut one = Vec::with_capacity(1);
        self.recv_many(1, &mut one, wait)?;
        Ok(one.pop().expect("recv_many took one message"))
    }

    /// Receive one message without waiting.
    pub fn try_recv(&self) -> Result<T, RecvError> {
        let mut st = self.slot.state.lock();
        if st.missed > 0 {
            return Err(RecvError::Lagged(std::mem::take(&mut st.missed)));
        }
        match st.queue.pop_front() {
            Some(m) => {
                if self.slot.policy == Policy::Block {
                    self.slot.writable.notify_all();
                }
                Ok(m)
            }
            None if st.closed => Err(RecvError::Closed),
            None => Err(RecvError::Empty),
        }
    }

    /// Take up to `max` messages into `out` or, when nothing is pending, store `waiter` to be
    /// woken by the next message or close (checked under one lock: no wake-up is lost).
    pub fn poll_register(
        &self,
        max: usize,
        out: &mut Vec<T>,
        waiter: W,
    ) -> Result<Poll<W>, (RecvError, W)> {
        let mut st = self.slot.state.lock();
        match self.take(&mut st, max, out) {
            Ok(()) => Ok(Poll::Ready(waiter)),
            Err(RecvError::Empty) => {
                st.next_waiter += 1;
                let id = st.next_waiter;
                st.waiters.push((id, waiter));
                Ok(Poll::Registered(id))
            }
            Err(e) => Err((e, waiter)),
        }
    }

    /// Remove a stored waiter that was not woken yet (a cancelled wait).
    pub fn unregister(&self, id: u64) -> Option<W> {
        let mut st = self.slot.state.lock();
        let i = st.waiters.iter().position(|(k, _)| *k == id)?;
        Some(st.waiters.swap_remove(i).1)
    }
}

impl<T, W> Drop for Receiver<T, W> {
    fn drop(&mut self) {
        self.detach();
        let (queue, waiters) = {
            let mut st = self.slot.state.lock();
            let mut wakers = Vec::new();
            self.slot.close_locked(&mut st, &mut wakers);
            (std::mem::take(&mut st.queue), wakers)
        };
        drop(queue); // outside the lock: message destructors may use the hub
        drop(waiters);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    type H = Hub<u64, u32>;

    impl Message for u64 {}

    #[derive(Clone, Debug, PartialEq)]
    struct Topical(u64, Option<&'static str>);

    impl Message for Topical {
        fn topic(&self) -> Option<&str> {
            self.1
        }
    }

    fn publish(hub: &H, m: u64) -> usize {
        hub.publish(m, Wait::Forever, &mut Outbox::new()).unwrap()
    }

    #[test]
    fn glob_rule() {
        let g = Glob::new("order.*");
        assert!(g.matches("order.paid"));
        assert!(g.matches("order."));
        assert!(!g.matches("order.a.b"));
        assert!(!g.matches("order"));
        assert!(!g.matches("xorder.paid"));
        let g = Glob::new("domain.sig_**");
        assert!(g.matches("domain.sig_x"));
        assert!(g.matches("domain.sig_a.b"));
        assert!(g.matches("domain.sig_"));
        assert!(!g.matches("domain.x"));
        assert!(Glob::new("**").matches(""));
        assert!(Glob::new("*").matches("abc"));
        assert!(!Glob::new("*").matches("a.c"));
        assert!(Glob::new("a*b*c").matches("aXXbYYc"));
        assert!(!Glob::new("a*b*c").matches("aXXbYY.c"));
        assert!(Glob::new("*.*").matches("a.b"));
        assert!(Glob::new("exact").matches("exact"));
        assert!(!Glob::new("exact").matches("exact."));
        // no exponential blow-up
        let long = "a".repeat(5000);
        assert!(!Glob::new("*a*a*a*a*a*a*a*a*b").matches(&long));
        assert!(TopicFilter::new(["x", "y.*"]).accepts(Some("y.z")));
        assert!(!TopicFilter::new(Vec::<String>::new()).accepts(Some("y")));
        assert!(!TopicFilter::new(["**"]).accepts(None));
    }

    #[test]
    fn lag_counts_are_exact() {
        let hub = H::new(4);
        let rx = hub.subscribe(Policy::Lag, None, None).unwrap();
        for i in 0..10 {
            assert_eq!(publish(&hub, i), 1);
        }
        assert_eq!(rx.len(), 4);
        assert_eq!(rx.try_recv(), Err(RecvError::Lagged(6)));
        assert_eq!(rx.lagged(), 6);
        assert_eq!(rx.try_recv(), Ok(6));
        publish(&hub, 10);
        publish(&hub, 11);
        assert_eq!(rx.recv(Wait::No), Err(RecvError::Lagged(1)));
        let mut out = Vec::new();
        rx.recv_many(10, &mut out, Wait::No).unwrap();
        assert_eq!(out, vec![8, 9, 10, 11]);
        assert_eq!(rx.lagged(), 7);
        assert_eq!(rx.try_recv(), Err(RecvError::Empty));
    }

    #[test]
    fn lag_memory_stays_bounded() {
        let hub = H::new(8);
        let rx = hub.subscribe(Policy::Lag, Some(3), None).unwrap();
        let mut out = Outbox::new();
        for i in 0..100_000 {
            hub.publish(i, Wait::No, &mut out).unwrap();
            assert!(out.garbage.len() <= 2);
            out.garbage.clear();
        }
        assert_eq!(rx.len(), 3);
        assert_eq!(rx.try_recv(), Err(RecvError::Lagged(99_997)));
    }

    #[test]
    fn block_waits_and_times_out() {
        let hub = H::new(2);
        let rx = hub.subscribe(Policy::Block, None, None).unwrap();
        publish(&hub, 1);
        publish(&hub, 2);
        let mut out = Outbox::new();
        assert_eq!(
            hub.publish(3, Wait::No, &mut out),
            Err(PublishError::WouldBlock(3))
        );
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            hub.publish(3, Wait::Until(soon), &mut out),
            Err(PublishError::WouldBlock(3))
        );
        assert_eq!(rx.len(), 2); // nobody got the timed-out message
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                assert_eq!(rx.try_recv(), Ok(1));
            });
            assert_eq!(publish(&hub, 3), 1);
        });
        let mut got = Vec::new();
        rx.recv_many(10, &mut got, Wait::No).unwrap();
        assert_eq!(got, vec![2, 3]);
    }

    #[test]
    fn block_timeout_delivers_to_nobody() {
        let hub = H::new(1);
        let full = hub.subscribe(Policy::Block, None, None).unwrap();
        let lag = hub.subscribe(Policy::Lag, None, None).unwrap();
        publish(&hub, 1);
        assert_eq!(lag.try_recv(), Ok(1));
        let soon = Instant::now() + Duration::from_millis(5);
        assert!(hub
            .publish(2, Wait::Until(soon), &mut Outbox::new())
            .is_err());
        assert_eq!(lag.try_recv(), Err(RecvError::Empty));
        assert_eq!(full.len(), 1);
    }

    #[test]
    fn topics_filter_before_queueing() {
        let hub: Hub<Topical, u32> = Hub::new(2);
        let rx = hub
            .subscribe(Policy::Lag, None, Some(TopicFilter::new(["order.*"])))
            .unwrap();
        let all = hub.subscribe(Policy::Lag, Some(100), None).unwrap();
        let none = hub
            .subscribe(
                Policy::Block,
                Some(1),
                Some(TopicFilter::new(Vec::<&str>::new())),
            )
            .unwrap();
        assert!(hub.has_filters());
        let mut out = Outbox::new();
        for (i, t) in ["order.paid", "order.a.b", "x", "order.new"]
            .iter()
            .enumerate()
        {
            let m = Topical(i as u64, Some(t));
            hub.publish(m, Wait::No, &mut out).unwrap();
        }
        assert_eq!(hub.publish(Topical(9, None), Wait::No, &mut out), Ok(1));
        assert_eq!(rx.len(), 2);
        assert_eq!(rx.lagged(), 0);
        assert_eq!(rx.try_recv().map(|m| m.0), Ok(0));
        assert_eq!(rx.try_recv().map(|m| m.0), Ok(3));
        assert_eq!(all.len(), 5);
        assert_eq!(none.len(), 0);
        drop(rx);
        drop(none);
        assert!(!hub.has_filters());
    }

    #[test]
    fn close_receiver_and_hub() {
        let hub = H::new(4);
        let rx = hub.subscribe(Policy::Lag, None, None).unwrap();
        publish(&hub, 1);
        rx.close(&mut Outbox::new());
        assert_eq!(publish(&hub, 2), 0);
        assert_eq!(rx.recv(Wait::Forever), Ok(1));
        assert_eq!(rx.recv(Wait::Forever), Err(RecvError::Closed));
        assert_eq!(rx.try_recv(), Err(RecvError::Closed));

        let rx = hub.subscribe(Policy::Block, Some(1), None).unwrap();
        publish(&hub, 3);
        std::thread::scope(|s| {
            let h = &hub;
            let blocked = s.spawn(move || h.publish(4, Wait::Forever, &mut Outbox::new()));
            let r2 = h.subscribe(Policy::Lag, None, None).unwrap();
            let waiting = s.spawn(move || r2.recv(Wait::Forever));
            std::thread::sleep(Duration::from_millis(30));
            h.close(&mut Outbox::new());
            assert_eq!(blocked.join().unwrap(), Err(PublishError::Closed(4)));
            assert_eq!(waiting.join().unwrap(), Err(RecvError::Closed));
        });
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(RecvError::Closed));
        assert!(hub.subscribe(Policy::Lag, None, None).is_none());
        assert!(matches!(
            hub.publish(5, Wait::No, &mut Outbox::new()),
            Err(PublishError::Closed(5))
        ));
    }

    #[test]
    fn dropping_a_full_block_receiver_frees_the_publisher() {
        let hub = H::new(1);
        let rx = hub.subscribe(Policy::Block, None, None).unwrap();
        publish(&hub, 1);
        std::thread::scope(|s| {
            let h = &hub;
            let blocked = s.spawn(move || h.publish(2, Wait::Forever, &mut Outbox::new()));
            std::thread::sleep(Duration::from_millis(30));
            drop(rx);
            assert_eq!(blocked.join().unwrap(), Ok(0));
        });
        assert_eq!(hub.receiver_count(), 0);
    }

    #[test]
    fn async_waiters_are_handed_out_once() {
        let hub = H::new(4);
        let rx = hub.subscribe(Policy::Lag, None, None).unwrap();
        let mut got = Vec::new();
        let Ok(Poll::Registered(id)) = rx.poll_register(8, &mut got, 7) else {
            panic!("nothing pending")
        };
        let mut out = Outbox::new();
        hub.publish(1, Wait::No, &mut out).unwrap();
        hub.publish(2, Wait::No, &mut out).unwrap();
        assert_eq!(out.wakers, vec![7]);
        assert_eq!(rx.unregister(id), None);
        assert!(matches!(
            rx.poll_register(8, &mut got, 8),
            Ok(Poll::Ready(8))
        ));
        assert_eq!(got, vec![1, 2]);
        let Ok(Poll::Registered(id)) = rx.poll_register(8, &mut got, 9) else {
            panic!()
        };
        assert_eq!(rx.unregister(id), Some(9));
        let Ok(Poll::Registered(_)) = rx.poll_register(8, &mut got, 10) else {
            panic!()
        };
        let mut out = Outbox::new();
        rx.close(&mut out);
        assert_eq!(out.wakers, vec![10]);
        assert!(matches!(
            rx.poll_register(8, &mut got, 11),
            Err((RecvError::Closed, 11))
        ));
    }

    #[test]
    fn block_loses_nothing_across_threads() {
        const N: u64 = 200_000;
        let hub = H::new(64);
        let rxs: Vec<_> = (0..3)
            .map(|_| hub.subscribe(Policy::Block, None, None).unwrap())
            .collect();
        std::thread::scope(|s| {
            for p in 0..2u64 {
                let h = &hub;
                s.spawn(move || {
                    let mut out = Outbox::new();
                    for i in 0..N {
                        h.publish(p * N + i, Wait::Forever, &mut out).unwrap();
                        out.garbage.clear();
                    }
                });
            }
            let mut seen = Vec::new();
            for rx in &rxs {
                seen.push(s.spawn(move || {
                    let mut all = Vec::new();
                    while all.len() < (2 * N) as usize {
                        rx.recv_many(100, &mut all, Wait::Forever).unwrap();
                    }
                    all
                }));
            }
            let seen: Vec<Vec<u64>> = seen.into_iter().map(|h| h.join().unwrap()).collect();
            // every receiver saw the same order, each publisher's messages in order
            assert!(seen.iter().all(|s| s == &seen[0]));
            for p in 0..2u64 {
                let mine: Vec<u64> = seen[0].iter().copied().filter(|m| m / N == p).collect();
                assert_eq!(mine, (p * N..(p + 1) * N).collect::<Vec<_>>());
            }
        });
    }

    #[test]
    fn many_threads_lag_counts_add_up() {
        let hub = H::new(16);
        let rx = hub.subscribe(Policy::Lag, None, None).unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                let h = &hub;
                s.spawn(move || {
                    for i in 0..10_000 {
                        publish(h, i);
                    }
                });
            }
        });
        let mut got = 0u64;
        let mut missed = 0u64;
        loop {
            match rx.try_recv() {
                Ok(_) => got += 1,
                Err(RecvError::Lagged(n)) => missed += n,
                Err(_) => break,
            }
        }
        assert_eq!(got + missed, 40_000);
        assert_eq!(got, 16);
        assert_eq!(rx.lagged(), missed);
    }
}
