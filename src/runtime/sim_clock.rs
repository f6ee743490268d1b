//! A simulated node's own clock. The harness owns it (like `SimDisk`, it outlives the node's
//! process, so a restarted node keeps its clock), and the node's driver reads it for
//! `Context::now_ms` and to time the node's timers.
//!
//! A node has two clocks, as a Kafka broker does: a **monotonic** one, which times its timers
//! (`Time.nanoseconds()` in Kafka: request and session timeouts, lag eviction, heartbeats), and a
//! **wall** clock, which is `now_ms` (`Time.milliseconds()`: record timestamps, retention by age).
//! Both run at the node's rate, `1 + drift_ppm / 1 000 000` times the simulated time: a node
//! whose clock is fast reads more and fires its timers earlier. A *jump* moves only the wall
//! clock, as an NTP step or an operator's `date -s` does, so timers are unaffected by it.
//!
//! wall reading = `SIM_EPOCH_MS + offset + monotonic + jumps`, where the monotonic reading is
//! the simulated time elapsed since the run started, scaled piece by piece by the rate in force.
//!
//! The readings derive from madsim's simulated time (`tokio::time::Instant` in the simulated
//! build), so they are a pure function of the seed. The `*_at` functions take the elapsed time
//! as an argument instead, for tests that run outside the simulator.

use super::driver::NodeClock;
use super::lock;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Where every simulated wall clock starts, before its offset (2023-11-14 in Unix milliseconds):
/// far enough from zero that a clock set back by hours still reads a positive time.
pub const SIM_EPOCH_MS: i64 = 1_700_000_000_000;

/// The slowest rate a clock may run at: a clock at -100 % would stand still and never fire a
/// timer.
pub const MIN_DRIFT_PPM: i64 = -900_000;
const MILLION: i128 = 1_000_000;

#[derive(Clone)]
pub struct SimClock {
    start: Instant,
    state: Arc<Mutex<State>>,
}

#[derive(Clone, Debug)]
struct State {
    /// The node's own drift, which a `clock-drift` fault departs from and returns to.
    own_drift_ppm: i64,
    drift_ppm: i64,
    /// Simulated time elapsed when the rate last changed, and the monotonic reading then (ns).
    anchor_elapsed_ns: i128,
    anchor_mono_ns: i128,
    offset_ms: i64,
    /// The sum of every jump so far.
    jumped_ms: i64,
}

impl State {
    fn mono_ns(&self, elapsed_ns: i128) -> i128 {
        let since = elapsed_ns - self.anchor_elapsed_ns;
        let rate = MILLION + i128::from(self.drift_ppm);
        // The same quotient in 64 bits while the product fits (runs of up to a day or so):
        // 128-bit division is a library call, and every event reads the clock.
        if let (Ok(since), Ok(rate)) = (i64::try_from(since), i64::try_from(rate)) {
            if let Some(product) = since.checked_mul(rate) {
                return self.anchor_mono_ns + i128::from(product / MILLION as i64);
            }
        }
        self.anchor_mono_ns + since * rate / MILLION
    }

    fn wall_ms(&self, elapsed_ns: i128) -> u64 {
        let ms = i128::from(SIM_EPOCH_MS)
            + i128::from(self.offset_ms)
            + i128::from(self.jumped_ms)
            + div_euclid_ms(self.mono_ns(elapsed_ns));
        // Only a clock set back past 1970 would read below zero; it then reads zero.
        ms.clamp(0, i128::from(u64::MAX)) as u64
    }

    fn set_drift(&mut self, elapsed_ns: i128, ppm: i64) {
        self.anchor_mono_ns = self.mono_ns(elapsed_ns);
        self.anchor_elapsed_ns = elapsed_ns;
        self.drift_ppm = ppm.max(MIN_DRIFT_PPM);
    }
}

/// Nanoseconds to whole milliseconds, rounding down, in 64 bits when the value fits (as
/// `mono_ns`, for speed; the same result).
fn div_euclid_ms(ns: i128) -> i128 {
    match i64::try_from(ns) {
        Ok(ns) => i128::from(ns.div_euclid(1_000_000)),
        Err(_) => ns.div_euclid(1_000_000),
    }
}

impl SimClock {
    /// A clock `offset_ms` ahead of true time (behind if negative) at `start`, running
    /// `drift_ppm` parts per million fast (slow if negative).
    pub fn new(start: Instant, offset_ms: i64, drift_ppm: i64) -> SimClock {
        let drift_ppm = drift_ppm.max(MIN_DRIFT_PPM);
        SimClock {
            start,
            state: Arc::new(Mutex::new(State {
                own_drift_ppm: drift_ppm,
                drift_ppm,
                anchor_elapsed_ns: 0,
                anchor_mono_ns: 0,
                offset_ms,
                jumped_ms: 0,
            })),
        }
    }

    fn elapsed_ns(&self) -> i128 {
        Instant::now()
            .saturating_duration_since(self.start)
            .as_nanos() as i128
    }

    /// The wall reading after `elapsed` of simulated time.
    pub fn wall_ms_at(&self, elapsed: Duration) -> u64 {
        lock(&self.state).wall_ms(elapsed.as_nanos() as i128)
    }

    /// The wall clock steps by `by_ms` (back if negative); timers are not affected.
    pub fn jump(&self, by_ms: i64) {
        let mut s = lock(&self.state);
        s.jumped_ms = s.jumped_ms.saturating_add(by_ms);
    }

    /// From now on the clock runs at `ppm` (the reading so far is kept).
    pub fn set_drift(&self, ppm: i64) {
        self.set_drift_at(Duration::from_nanos(self.elapsed_ns() as u64), ppm);
    }

    /// `set_drift` at `elapsed` of simulated time.
    pub fn set_drift_at(&self, elapsed: Duration, ppm: i64) {
        lock(&self.state).set_drift(elapsed.as_nanos() as i128, ppm);
    }

    /// Back to the node's own drift.
    pub fn restore_drift(&self) {
        let own = lock(&self.state).own_drift_ppm;
        self.set_drift(own);
    }

    pub fn drift_ppm(&self) -> i64 {
        lock(&self.state).drift_ppm
    }

    /// How far the wall clock reads from true time now, in ms (offset, drift and jumps).
    pub fn skew_ms(&self) -> i64 {
        let elapsed = self.elapsed_ns();
        let wall = lock(&self.state).wall_ms(elapsed) as i128;
        (wall - i128::from(SIM_EPOCH_MS) - elapsed.div_euclid(1_000_000)) as i64
    }

    /// How long, in simulated time, `after_ms` of this clock's time takes at its present rate.
    pub fn timer_duration_ms(&self, after_ms: u64) -> Duration {
        let ppm = lock(&self.state).drift_ppm;
        if ppm == 0 {
            return Duration::from_millis(after_ms);
        }
        let rate = (MILLION + i128::from(ppm)) as u128;
        // The same quotient in 64 bits while the product fits (timers of up to 18 s):
        // 128-bit division is a library call, and nodes set timers on most events.
        if let Some(product) = after_ms.checked_mul(1_000_000 * MILLION as u64) {
            return Duration::from_nanos(product / rate as u64);
        }
        let ns = u128::from(after_ms) * 1_000_000 * MILLION as u128 / rate;
        Duration::from_nanos(ns.min(u128::from(u64::MAX)) as u64)
    }
}

impl NodeClock for SimClock {
    fn wall_ms(&self) -> u64 {
        let elapsed = self.elapsed_ns();
        lock(&self.state).wall_ms(elapsed)
    }

    fn wall_ms_at(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_nanos() as i128;
        lock(&self.state).wall_ms(elapsed)
    }

    fn timer_duration(&self, after_ms: u64) -> Duration {
        self.timer_duration_ms(after_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_64_bit_shortcuts_give_the_128_bit_results() {
        for ppm in [MIN_DRIFT_PPM, -12_345, 0, 1, 777_777, 5_000_000] {
            for since in [
                0i128,
                1,
                999_999,
                -3_000_001,
                86_400_000_000_000,
                i128::from(i64::MAX),
            ] {
                let s = State {
                    own_drift_ppm: ppm,
                    drift_ppm: ppm,
                    anchor_elapsed_ns: 5,
                    anchor_mono_ns: -7,
                    offset_ms: 0,
                    jumped_ms: 0,
                };
                let exact = -7 + since * (MILLION + i128::from(ppm)) / MILLION;
                assert_eq!(s.mono_ns(since + 5), exact, "since {since} ppm {ppm}");
                assert_eq!(div_euclid_ms(exact), exact.div_euclid(1_000_000));
            }
            let c = SimClock::new(Instant::now(), 0, ppm);
            let rate = (MILLION + i128::from(ppm)) as u128;
            // Both sides of the largest product that fits in 64 bits, and far beyond.
            for after_ms in [0, 1, 999, 18_446, 18_447, 86_400_000, u64::MAX] {
                let ns = u128::from(after_ms) * 1_000_000 * MILLION as u128 / rate;
                let exact = match ppm {
                    0 => Duration::from_millis(after_ms),
                    _ => Duration::from_nanos(ns.min(u128::from(u64::MAX)) as u64),
                };
                let got = c.timer_duration_ms(after_ms);
                assert_eq!(got, exact, "after {after_ms} ms ppm {ppm}");
            }
        }
    }

    #[test]
    fn a_clock_reads_its_offset_plus_drifted_elapsed_time() {
        let c = SimClock::new(Instant::now(), -2_000, 10_000);
        assert_eq!(c.wall_ms_at(secs(0)) as i64, SIM_EPOCH_MS - 2_000);
        // 1 % fast: 100 s of simulated time read as 101 s.
        assert_eq!(
            c.wall_ms_at(secs(100)) as i64,
            SIM_EPOCH_MS - 2_000 + 101_000
        );
        // Its timers fire 1 % early.
        assert_eq!(
            c.timer_duration_ms(1_010),
            Duration::from_millis(1_000),
            "1010 ms of a 1 % fast clock"
        );
        let exact = SimClock::new(Instant::now(), 0, 0);
        assert_eq!(exact.timer_duration_ms(1_234), Duration::from_millis(1_234));
    }

    #[test]
    fn a_jump_moves_the_wall_clock_only_and_may_go_back() {
        let c = SimClock::new(Instant::now(), 0, 0);
        let before = c.wall_ms_at(secs(10));
        c.jump(-3_600_000);
        let after = c.wall_ms_at(secs(11));
        assert!(after < before, "{after} is not before {before}");
        assert_eq!(before - after, 3_600_000 - 1_000);
        assert_eq!(c.timer_duration_ms(500), Duration::from_millis(500));
        c.jump(3_600_000);
        assert_eq!(c.wall_ms_at(secs(11)), before + 1_000);
    }

    #[test]
    fn a_drift_change_keeps_the_reading_continuous() {
        let c = SimClock::new(Instant::now(), 0, 0);
        c.set_drift_at(secs(10), 500_000);
        let at = |s| c.wall_ms_at(secs(s)) as i64 - SIM_EPOCH_MS;
        assert_eq!(at(10), 10_000);
        assert_eq!(at(12), 13_000, "1.5 times as fast from 10 s on");
        assert_eq!(c.timer_duration_ms(1_500), Duration::from_millis(1_000));
        c.set_drift_at(secs(12), 0);
        assert_eq!(at(14), 15_000);
        // A clock cannot stand still or run backwards.
        c.set_drift_at(secs(14), -2_000_000);
        assert_eq!(c.drift_ppm(), MIN_DRIFT_PPM);
        assert!(at(24) > at(14));
    }

    #[test]
    fn a_clock_set_back_past_1970_reads_zero() {
        let c = SimClock::new(Instant::now(), 0, 0);
        c.jump(i64::MIN);
        assert_eq!(c.wall_ms_at(secs(1)), 0);
    }
}
