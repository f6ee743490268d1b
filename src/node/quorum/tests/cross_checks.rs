//! The cross-node checks (`invariants.rs`): each passes on a quorum that ran through its entry
//! points, and fails once one voter is put in the state a bug would leave it in.

use super::*;

/// Voter 0 leads epoch 1 and has committed one record besides its leader change, held by all.
fn committed_quorum() -> Net {
    let mut net = Net::new(&[]);
    net.elect(0);
    net.submit(0, 5);
    assert_eq!(net.nodes[0].high_watermark(), 2);
    net
}

/// Voter `id` as it was before the election: epoch 0, no vote, an empty log.
fn unelected(id: NodeId) -> QuorumNode {
    QuorumNode::new(config(id, &[]))
}

fn rule(checked: Checked) -> Option<&'static str> {
    checked.err().map(|v| v.rule)
}

#[test]
fn a_vote_a_power_loss_could_still_take_does_not_elect() {
    let net = committed_quorum();
    let durably = |leader: &QuorumNode, others: &[QuorumNode]| {
        leader.check_elected_by_majority(|v| {
            others[v as usize].supports_leader_durably(leader.id(), leader.epoch())
        })
    };
    let unsynced = |n: &QuorumNode| {
        let mut n = n.clone();
        n.election_unsynced = Some(n.requested + 1);
        n
    };
    let leader = &net.nodes[0];
    assert_eq!(rule(durably(leader, &net.nodes)), None);
    // Voter 1's vote not synced yet: the leader and voter 2 are still a majority, alone the
    // leader is not.
    let one_unsynced = [
        leader.clone(),
        unsynced(&net.nodes[1]),
        net.nodes[2].clone(),
    ];
    assert_eq!(rule(durably(leader, &one_unsynced)), None);
    let with_no_other = [leader.clone(), unsynced(&net.nodes[1]), unelected(2)];
    assert_eq!(
        rule(durably(leader, &with_no_other)),
        Some("leader-elected-by-majority")
    );
    // The leader's own vote not synced (vote requests sent before the sync): voter 1's grant
    // alone is not a majority; voters 1 and 2 together are.
    let own_unsynced = unsynced(leader);
    let one_grant = [own_unsynced.clone(), net.nodes[1].clone(), unelected(2)];
    assert_eq!(
        rule(durably(&own_unsynced, &one_grant)),
        Some("leader-elected-by-majority")
    );
    assert_eq!(rule(durably(&own_unsynced, &net.nodes)), None);
    // A voter that moved past the epoch counts, its newer vote synced or not.
    let mut later = unsynced(&unelected(1));
    later.epoch = 2;
    assert!(later.supports_leader_durably(0, 1));
}

#[test]
fn a_leader_whose_voters_show_no_vote_for_it_is_not_elected_by_majority() {
    let net = committed_quorum();
    let leader = &net.nodes[0];
    let votes = |others: &[QuorumNode]| {
        leader.check_elected_by_majority(|v| {
            others[v as usize].supports_leader(leader.id(), leader.epoch())
        })
    };
    assert_eq!(rule(votes(&net.nodes)), None);
    // One voter still in epoch 0 (a grant of an older election counted, say): the leader's
    // own vote and one other are a majority of three.
    let one_behind = [net.nodes[0].clone(), unelected(1), net.nodes[2].clone()];
    assert_eq!(rule(votes(&one_behind)), None);
    let both_behind = [net.nodes[0].clone(), unelected(1), unelected(2)];
    assert_eq!(
        rule(votes(&both_behind)),
        Some("leader-elected-by-majority")
    );
    // A voter in a later epoch is counted (its vote in epoch 1 can no longer be seen), and so
    // is a crashed voter's disk showing the vote.
    let mut later = unelected(1);
    later.epoch = 2;
    assert!(later.supports_leader(0, 1));
    assert!(net.images[2].supports_leader(0, 1));
    assert!(!net.images[2].supports_leader(1, 1));
    // A voter in the leader's epoch that voted for someone else does not count.
    let mut other = net.nodes[1].clone();
    other.voted_for = Some(2);
    let voted_elsewhere = [net.nodes[0].clone(), other.clone(), unelected(2)];
    assert_eq!(
        rule(votes(&voted_elsewhere)),
        Some("leader-elected-by-majority")
    );
    // Only a leader is checked.
    assert_eq!(
        rule(net.nodes[1].check_elected_by_majority(|_| false)),
        None
    );
}

#[test]
fn a_leader_counting_more_of_a_follower_than_it_holds_breaks_progress_held() {
    let net = committed_quorum();
    let leader = &net.nodes[0];
    let mut counted = Vec::new();
    let check = |followers: &[QuorumNode], counted: &mut Vec<(NodeId, Offset)>| {
        leader.each_recorded_progress(|f, epoch, offset, entry| {
            counted.push((f, offset));
            followers[f as usize].check_progress_held(leader.id(), epoch, offset, entry)
        })
    };
    assert_eq!(rule(check(&net.nodes, &mut counted)), None);
    assert_eq!(
        counted,
        vec![(1, 2), (2, 2)],
        "both followers fetched past the record"
    );
    // Follower 1 restarted from a disk that lost the record (as if it had fetched before
    // syncing it), still in epoch 1.
    let mut image = net.images[1].clone();
    image.log.truncate(1);
    let short = QuorumNode::recover(config(1, &[]), image);
    let followers = [net.nodes[0].clone(), short, net.nodes[2].clone()];
    assert_eq!(
        rule(check(&followers, &mut Vec::new())),
        Some("quorum-progress-held-by-follower")
    );
    // Follower 1 holds the record in its log but has not synced it (a fetch sent before its
    // sync completed): what the leader counts must be on the follower's disk.
    let mut unsynced = net.nodes[1].clone();
    unsynced.synced_end = 1;
    assert_eq!(unsynced.durable_end(), 1);
    let followers = [net.nodes[0].clone(), unsynced, net.nodes[2].clone()];
    assert_eq!(
        rule(check(&followers, &mut Vec::new())),
        Some("quorum-progress-held-by-follower")
    );
    // Restarted from a disk holding the record, before its first sync: what it recovered counts.
    let restarted = QuorumNode::recover(config(1, &[]), net.images[1].clone());
    assert_eq!((restarted.synced_end(), restarted.durable_end()), (0, 2));
    let followers = [net.nodes[0].clone(), restarted, net.nodes[2].clone()];
    assert_eq!(rule(check(&followers, &mut Vec::new())), None);
    // A follower behind the epoch it fetched in.
    let followers = [net.nodes[0].clone(), net.nodes[1].clone(), unelected(2)];
    assert_eq!(
        rule(check(&followers, &mut Vec::new())),
        Some("quorum-progress-held-by-follower")
    );
    // The same length, but an entry of another epoch where the leader's is.
    let mut image = net.images[1].clone();
    image.log[1].epoch = 0;
    let other = QuorumNode::recover(config(1, &[]), image);
    let followers = [net.nodes[0].clone(), other, net.nodes[2].clone()];
    assert_eq!(
        rule(check(&followers, &mut Vec::new())),
        Some("quorum-progress-held-by-follower")
    );
    // A follower that moved to a later epoch may have truncated since: not judged.
    let mut later = unelected(1);
    later.epoch = 2;
    let followers = [net.nodes[0].clone(), later, net.nodes[2].clone()];
    assert_eq!(rule(check(&followers, &mut Vec::new())), None);
}

#[test]
fn a_high_watermark_over_an_entry_a_majority_lacks_breaks_hw_held_by_majority() {
    let net = committed_quorum();
    let holds = |voters: &[QuorumNode], who: &QuorumNode| {
        who.check_hw_held_by_majority(|v, offset, epoch| {
            voters[v as usize].holds_durably(offset, epoch)
        })
    };
    for who in &net.nodes {
        assert_eq!(rule(holds(&net.nodes, who)), None, "voter {}", who.id());
    }
    // One voter lost the record: two of three still hold it.
    let one_lost = [net.nodes[0].clone(), unelected(1), net.nodes[2].clone()];
    assert_eq!(rule(holds(&one_lost, &net.nodes[0])), None);
    let two_lost = [net.nodes[0].clone(), unelected(1), unelected(2)];
    assert_eq!(
        rule(holds(&two_lost, &net.nodes[0])),
        Some("quorum-hw-held-by-majority")
    );
    // Written by every voter but synced by the leader alone: not held by a majority.
    let unsynced = |v: usize| {
        let mut node = net.nodes[v].clone();
        node.synced_end = 1;
        node
    };
    let written = [net.nodes[0].clone(), unsynced(1), unsynced(2)];
    assert_eq!(
        rule(holds(&written, &net.nodes[0])),
        Some("quorum-hw-held-by-majority")
    );
    let one_synced = [net.nodes[0].clone(), unsynced(1), net.nodes[2].clone()];
    assert_eq!(rule(holds(&one_synced, &net.nodes[0])), None);
    // The judged voter counts only what it synced itself (a leader counting its written log).
    let leader_unsynced = [unsynced(0), unsynced(1), net.nodes[2].clone()];
    assert_eq!(
        rule(holds(&leader_unsynced, &leader_unsynced[0])),
        Some("quorum-hw-held-by-majority")
    );
    // A voter restarted from a disk holding the entry counts it before its first sync.
    let restarted = QuorumNode::recover(config(1, &[]), net.images[1].clone());
    let with_restarted = [net.nodes[0].clone(), restarted, unsynced(2)];
    assert_eq!(rule(holds(&with_restarted, &net.nodes[0])), None);
    // Judged by the disks of crashed voters: the same answers.
    assert!(net.images[1].holds(1, 1));
    assert!(!QuorumImage::default().holds(1, 1));
    // An entry of another epoch at that offset is not the committed one.
    assert!(!net.nodes[1].holds(1, 2));
}

#[test]
fn a_voter_whose_disk_holds_another_epoch_vote_or_log_breaks_disk_matches_memory() {
    let net = committed_quorum();
    // Every write of the run is in the disk images: each replays to its voter's memory.
    for (voter, image) in net.nodes.iter().zip(&net.images) {
        assert_eq!(
            rule(voter.check_disk_image(image)),
            None,
            "voter {}",
            voter.id()
        );
    }
    let (leader, image) = (&net.nodes[0], &net.images[0]);
    let changed = |f: &dyn Fn(&mut QuorumImage)| {
        let mut disk = image.clone();
        f(&mut disk);
        rule(leader.check_disk_image(&disk))
    };
    // A vote or an epoch held only in memory, an entry lost or added on disk.
    assert_eq!(
        changed(&|d| d.voted_for = None),
        Some("disk-matches-memory")
    );
    assert_eq!(changed(&|d| d.epoch += 1), Some("disk-matches-memory"));
    assert_eq!(changed(&|d| d.log.truncate(1)), Some("disk-matches-memory"));
    assert_eq!(
        changed(&|d| {
            let last = d.log.last().cloned().expect("an entry");
            d.log.push(last);
        }),
        Some("disk-matches-memory")
    );
    assert_eq!(changed(&|_| {}), None);
}
