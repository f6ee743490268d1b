//! Property tests of the log: any sequence of leader appends (epochs only grow), truncations,
//! high-watermark moves and log-start moves keeps the log's invariants, and a follower copying the
//! leader's entries ends with the same log.

use super::PartitionLog;
use crate::protocol::{Offset, Record};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Append { epoch_bump: u32, count: usize },
    Truncate(Offset),
    SetHw(Offset),
    AdvanceStart(Offset),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u32..3, 1usize..4).prop_map(|(epoch_bump, count)| Op::Append { epoch_bump, count }),
        1 => (0u64..20).prop_map(Op::Truncate),
        1 => (0u64..20).prop_map(Op::SetHw),
        1 => (0u64..20).prop_map(Op::AdvanceStart),
    ]
}

fn check_invariants(log: &PartitionLog) -> Result<(), TestCaseError> {
    let start = log.log_start_offset();
    prop_assert!(start <= log.high_watermark() && log.high_watermark() <= log.log_end_offset());
    for (i, e) in log.entries().iter().enumerate() {
        prop_assert_eq!(e.offset, start + i as Offset, "offsets are consecutive");
        prop_assert_eq!(
            log.epoch_cache().epoch_at(e.offset),
            Some(e.epoch),
            "cache covers entry"
        );
    }
    let epochs = log.epoch_cache().entries();
    for w in epochs.windows(2) {
        prop_assert!(w[0].epoch < w[1].epoch && w[0].start_offset <= w[1].start_offset);
    }
    for w in log.entries().windows(2) {
        prop_assert!(w[0].epoch <= w[1].epoch, "epochs never decrease");
    }
    Ok(())
}

proptest! {
    #[test]
    fn operations_keep_the_log_consistent(ops in proptest::collection::vec(op(), 0..40)) {
        let mut log = PartitionLog::new();
        let mut epoch = 0;
        for op in ops {
            match op {
                Op::Append { epoch_bump, count } => {
                    epoch += epoch_bump;
                    let recs: Vec<Record> = (0..count).map(|i| Record::keyed("k", format!("{i}"))).collect();
                    let before = log.log_end_offset();
                    let entries = log.append_as_leader(epoch, &recs).unwrap();
                    prop_assert_eq!(entries[0].offset, before);
                    prop_assert_eq!(log.log_end_offset(), before + count as Offset);
                }
                Op::Truncate(o) => {
                    let r = log.truncate_to(o);
                    prop_assert_eq!(r.is_err(), o < log.log_start_offset());
                    if r.is_ok() {
                        prop_assert!(log.log_end_offset() <= o);
                    }
                }
                Op::SetHw(o) => {
                    let inside = log.log_start_offset() <= o && o <= log.log_end_offset();
                    prop_assert_eq!(log.set_high_watermark(o).is_ok(), inside);
                }
                Op::AdvanceStart(o) => {
                    let before = log.log_start_offset();
                    log.advance_log_start(o);
                    prop_assert_eq!(log.log_start_offset(), before.max(o));
                }
            }
            check_invariants(&log)?;
        }
    }

    #[test]
    fn a_follower_copying_the_leader_has_the_same_log(bumps in proptest::collection::vec(0u32..3, 1..20)) {
        let mut leader = PartitionLog::new();
        let mut epoch = 0;
        for (i, b) in bumps.iter().enumerate() {
            epoch += b;
            leader.assign_epoch(epoch, leader.log_end_offset());
            leader.append_as_leader(epoch, &[Record::keyed("k", format!("{i}"))]).unwrap();
        }
        let mut follower = PartitionLog::new();
        for chunk in leader.entries().chunks(3) {
            follower.append_entries(chunk).unwrap();
        }
        prop_assert_eq!(follower.entries(), leader.entries());
        // Every epoch ends at the same offset in both logs: no divergence to truncate.
        for e in 0..=epoch {
            prop_assert_eq!(follower.end_offset_for_epoch(e), leader.end_offset_for_epoch(e));
        }
    }
}
