//! A node's pending timers and which one fires first, for the driver.
//!
//! The driver waits for the first due timer after every event. Scanning every timer each time
//! showed in the simulator's profiles (a broker holds one per partition and follower), so the
//! first due is kept as timers are set and cancelled, and found by a scan only after it fires,
//! is cancelled or moves. Which timer is first must not depend on that bookkeeping: the order of
//! events, and so every trace, follows from it (`first_due_is_always_the_earliest` checks it
//! against a plain scan).

use crate::node::Timer;
use std::collections::BTreeMap;

/// Pending timers, each with its deadline (`A`: an instant). The first due is the earliest;
/// timers due at the same instant fire in `Timer` order.
#[derive(Debug)]
pub struct TimerSet<A> {
    timers: BTreeMap<Timer, A>,
    /// The first due timer and its deadline as far as known (`Some(None)`: no timer is set);
    /// `None` until the timers are scanned again.
    first: Option<Option<(Timer, A)>>,
}

impl<A: Ord + Copy> Default for TimerSet<A> {
    fn default() -> Self {
        TimerSet {
            timers: BTreeMap::new(),
            first: Some(None),
        }
    }
}

impl<A: Ord + Copy> TimerSet<A> {
    /// Sets `timer` to fire at `at`, replacing its deadline if it was set.
    pub fn set(&mut self, timer: Timer, at: A) {
        if let Some(known) = &self.first {
            match known {
                // The first timer moved: which is first now needs a scan.
                Some((first, _)) if *first == timer => self.first = None,
                Some((first, first_at)) if (at, &timer) >= (*first_at, first) => {}
                _ => self.first = Some(Some((timer.clone(), at))),
            }
        }
        self.timers.insert(timer, at);
    }

    /// Cancels `timer`; false if it was not set.
    pub fn cancel(&mut self, timer: &Timer) -> bool {
        if self.timers.remove(timer).is_none() {
            return false;
        }
        if matches!(&self.first, Some(Some((first, _))) if first == timer) {
            self.first = None;
        }
        true
    }

    /// When the first due timer fires (`None`: no timer is set).
    pub fn next_deadline(&mut self) -> Option<A> {
        self.first().map(|(_, at)| *at)
    }

    /// Removes the first due timer and returns it (`None`: no timer is set).
    pub fn pop_first(&mut self) -> Option<Timer> {
        let (timer, _) = self.first()?.clone();
        self.timers.remove(&timer);
        self.first = None;
        Some(timer)
    }

    pub fn len(&self) -> usize {
        self.timers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timers.is_empty()
    }

    fn first(&mut self) -> Option<&(Timer, A)> {
        let timers = &self.timers;
        self.first
            .get_or_insert_with(|| {
                timers
                    .iter()
                    .min_by(|a, b| a.1.cmp(b.1).then_with(|| a.0.cmp(b.0)))
                    .map(|(t, at)| (t.clone(), *at))
            })
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn timer(i: u8) -> Timer {
        match i % 5 {
            0 => Timer::Heartbeat,
            1 => Timer::RegisterRetry,
            2 => Timer::ParkedExpiry,
            3 => Timer::Retention,
            _ => Timer::SessionExpiry(u32::from(i)),
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Set(u8, u8),
        Cancel(u8),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..8, 0u8..6).prop_map(|(t, at)| Op::Set(t, at)),
            1 => (0u8..8).prop_map(Op::Cancel),
            1 => Just(Op::Pop),
        ]
    }

    /// The earliest timer by a plain scan: deadline first, then `Timer` order.
    fn scan(model: &BTreeMap<Timer, u8>) -> Option<(Timer, u8)> {
        model
            .iter()
            .map(|(t, at)| (*at, t.clone()))
            .min()
            .map(|(at, t)| (t, at))
    }

    proptest! {
        /// Whatever is set, moved, cancelled and fired, the set's first due timer is the one a
        /// scan of every pending timer finds, and firing takes exactly that one.
        #[test]
        fn first_due_is_always_the_earliest(ops in proptest::collection::vec(op(), 1..60)) {
            let mut set = TimerSet::default();
            let mut model: BTreeMap<Timer, u8> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Set(t, at) => {
                        set.set(timer(t), at);
                        model.insert(timer(t), at);
                    }
                    Op::Cancel(t) => {
                        prop_assert_eq!(set.cancel(&timer(t)), model.remove(&timer(t)).is_some());
                    }
                    Op::Pop => {
                        let expected = scan(&model).map(|(t, _)| t);
                        if let Some(t) = &expected {
                            model.remove(t);
                        }
                        prop_assert_eq!(set.pop_first(), expected);
                    }
                }
                prop_assert_eq!(set.next_deadline(), scan(&model).map(|(_, at)| at));
                prop_assert_eq!(set.len(), model.len());
            }
        }
    }

    #[test]
    fn ties_fire_in_timer_order_and_a_moved_first_timer_is_found_again() {
        let mut set = TimerSet::default();
        set.set(Timer::Retention, 5);
        set.set(Timer::Heartbeat, 5);
        assert_eq!(set.next_deadline(), Some(5));
        // The first moves later: the other one, due earlier now, is first.
        set.set(Timer::Heartbeat, 9);
        assert_eq!(set.pop_first(), Some(Timer::Retention));
        assert_eq!(set.pop_first(), Some(Timer::Heartbeat));
        assert_eq!(set.pop_first(), None);
        assert!(set.is_empty());
    }
}
