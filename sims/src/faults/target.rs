//! Which node a fault hits: a fixed node id, a role in the hunted partition (`events-0`) looked
//! up in the controllers' committed metadata while the run is under way, or the active
//! controller. Faults aimed at roles
//! are what a targeted nemesis needs: "the leader loses power, then the follower that will not be
//! elected stalls" names nodes that are only known once the run gets there.
//!
//! A role carries an episode tag (`leader#3`): the first role-targeted fault of an episode binds
//! all of that episode's roles to nodes at once, so its later faults (and those that undo them)
//! hit the nodes the episode started with even after leadership has moved. In JSON a target is
//! a number (a node id) or such a string.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The partition's leader (none while it is offline: the fault is then skipped).
    Leader,
    /// The follower the controller elects next: the first in-sync replica in assignment order
    /// that is not the leader (if none is in sync, the first other replica).
    Follower,
    /// The next follower in that order.
    OtherFollower,
    /// The active controller: the quorum's leader acting as controller (none during an
    /// election: the fault is then skipped).
    ActiveController,
    /// The first other controller in id order, and the next one: the voters that elect the
    /// active controller's successor.
    StandbyController,
    OtherStandbyController,
    /// A controller that has just won an election: it leads the quorum, is not active yet, and
    /// its leader-change entry is not yet on its disk, so nothing of its epoch has left it.
    /// Bound when a fault first finds one (not at the episode's start, as the roles above).
    NewLeader,
    /// The same, once `new-leader` of the episode is bound: another controller.
    SecondNewLeader,
    /// While `new-leader` of the episode leads again, not yet active: a follower it knows to
    /// hold its log exactly up to its epoch start — the older entries, not its leader change
    /// (Raft's Figure 8: a majority holds an earlier epoch's entry and none of the leader's).
    EpochStartFollower,
    /// A replica of the hunted partition that the episode's leader has proposed for the ISR,
    /// proposal unanswered: bound the moment the leader sends it.
    IsrJoiner,
    /// A consumer group member asking its coordinator for a committed offset, with at least
    /// one more assigned partition to ask about after it: bound the moment one does.
    OffsetFetcher,
    /// The broker the episode's `offset-fetcher` is asking (its group coordinator, as far as
    /// the member knows).
    FetchedCoordinator,
}

impl Role {
    pub const ALL: [Role; 12] = [
        Role::Leader,
        Role::Follower,
        Role::OtherFollower,
        Role::ActiveController,
        Role::StandbyController,
        Role::OtherStandbyController,
        Role::NewLeader,
        Role::SecondNewLeader,
        Role::EpochStartFollower,
        Role::IsrJoiner,
        Role::OffsetFetcher,
        Role::FetchedCoordinator,
    ];

    /// Roles bound when a fault first finds a node in them, each on its own, rather than with
    /// the rest of the episode at its first fault: they name nodes only in passing states of
    /// the quorum.
    pub fn is_lazy(self) -> bool {
        matches!(
            self,
            Role::NewLeader
                | Role::SecondNewLeader
                | Role::EpochStartFollower
                | Role::IsrJoiner
                | Role::OffsetFetcher
                | Role::FetchedCoordinator
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::OtherFollower => "other-follower",
            Role::ActiveController => "active-controller",
            Role::StandbyController => "standby-controller",
            Role::OtherStandbyController => "other-standby-controller",
            Role::NewLeader => "new-leader",
            Role::SecondNewLeader => "second-new-leader",
            Role::EpochStartFollower => "epoch-start-follower",
            Role::IsrJoiner => "isr-joiner",
            Role::OffsetFetcher => "offset-fetcher",
            Role::FetchedCoordinator => "fetched-coordinator",
        }
    }

    /// The broker holding this partition role, given the partition's assignment order, leader
    /// and ISR (`None` for the controller roles).
    /// Followers are ranked as the controller's election ranks them: in-sync replicas in
    /// assignment order, then the others.
    pub fn resolve(self, replicas: &[u32], leader: Option<u32>, isr: &[u32]) -> Option<u32> {
        let others = replicas.iter().copied().filter(|r| Some(*r) != leader);
        let (in_sync, out): (Vec<u32>, Vec<u32>) = others.partition(|r| isr.contains(r));
        let mut followers = in_sync.into_iter().chain(out);
        match self {
            Role::Leader => leader,
            Role::Follower => followers.next(),
            Role::OtherFollower => followers.nth(1),
            Role::ActiveController
            | Role::StandbyController
            | Role::OtherStandbyController
            | Role::NewLeader
            | Role::SecondNewLeader
            | Role::EpochStartFollower
            | Role::IsrJoiner
            | Role::OffsetFetcher
            | Role::FetchedCoordinator => None,
        }
    }
}

/// A role within one episode of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleRef {
    pub role: Role,
    pub episode: u32,
}

impl fmt::Display for RoleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.role.name(), self.episode)
    }
}

impl TryFrom<String> for RoleRef {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let (name, episode) = s
            .split_once('#')
            .ok_or_else(|| format!("target {s:?}: expected a node id or ROLE#EPISODE"))?;
        let role = Role::ALL
            .into_iter()
            .find(|r| r.name() == name)
            .ok_or_else(|| {
                format!("target {s:?}: unknown role {name:?} (leader, follower, other-follower, active-controller, \
                 standby-controller, other-standby-controller, new-leader, second-new-leader, \
                 epoch-start-follower, isr-joiner, offset-fetcher, fetched-coordinator)")
            })?;
        let episode = episode
            .parse()
            .map_err(|_| format!("target {s:?}: episode {episode:?} is not a number"))?;
        Ok(RoleRef { role, episode })
    }
}

impl From<RoleRef> for String {
    fn from(r: RoleRef) -> String {
        r.to_string()
    }
}

impl Serialize for RoleRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for RoleRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RoleRef::try_from(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged, try_from = "RawTarget")]
pub enum Target {
    Node(u32),
    Role(RoleRef),
}

/// What a target looks like in JSON before it is checked (serde's own message for a failed
/// untagged enum would not say what is wrong with the string).
#[derive(Deserialize)]
#[serde(untagged)]
enum RawTarget {
    Node(u32),
    Text(String),
}

impl TryFrom<RawTarget> for Target {
    type Error = String;

    fn try_from(raw: RawTarget) -> Result<Self, String> {
        match raw {
            RawTarget::Node(n) => Ok(Target::Node(n)),
            RawTarget::Text(s) => RoleRef::try_from(s).map(Target::Role),
        }
    }
}

impl From<u32> for Target {
    fn from(node: u32) -> Target {
        Target::Node(node)
    }
}

impl Target {
    pub fn role(role: Role, episode: u32) -> Target {
        Target::Role(RoleRef { role, episode })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Node(n) => write!(f, "{n}"),
            Target::Role(r) => r.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_and_write_as_numbers_or_role_strings() {
        let t: Vec<Target> =
            serde_json::from_str(r#"[2, "leader#0", "other-follower#7"]"#).expect("valid targets");
        assert_eq!(
            t,
            vec![
                Target::Node(2),
                Target::role(Role::Leader, 0),
                Target::role(Role::OtherFollower, 7)
            ]
        );
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"[2,"leader#0","other-follower#7"]"#
        );
    }

    #[test]
    fn bad_targets_are_refused_with_the_reason() {
        for (text, reason) in [
            (r#""leader""#, "expected a node id or ROLE#EPISODE"),
            (r#""boss#1""#, "unknown role"),
            (r#""leader#x""#, "is not a number"),
        ] {
            let err = serde_json::from_str::<Target>(text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn roles_follow_the_controllers_election_order() {
        let replicas = [2, 0, 1];
        let all = [0, 1, 2];
        assert_eq!(Role::Leader.resolve(&replicas, Some(0), &all), Some(0));
        assert_eq!(Role::Follower.resolve(&replicas, Some(0), &all), Some(2));
        assert_eq!(
            Role::OtherFollower.resolve(&replicas, Some(0), &all),
            Some(1)
        );
        // Broker 2 fell out of the ISR: broker 1 would be elected next.
        assert_eq!(Role::Follower.resolve(&replicas, Some(0), &[0, 1]), Some(1));
        assert_eq!(
            Role::OtherFollower.resolve(&replicas, Some(0), &[0, 1]),
            Some(2)
        );
        assert_eq!(Role::Leader.resolve(&replicas, None, &all), None);
    }
}
