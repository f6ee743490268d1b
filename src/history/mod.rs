//! Client-operation histories and the Jepsen-style checker that reads them. Pure: it parses text
//! it is given and computes; no I/O, time or randomness. The simulator writes histories in this
//! format, and `check-history` reads any file in it, including ones written by hand.

mod by_time;
mod checker;
mod edn;
mod event;
mod groups;
mod jepsen;
mod latest;
mod ops;
mod rebalance;
#[cfg(test)]
mod tests;

pub use checker::{check, Anomaly, Report, Stats};
pub use event::{
    parse_history, to_json_line, Event, EventType, HistoryError, MaxTimestampAnswer, Op, Partition,
    PolledRecord,
};
