//! Which Raft group replicates a partition ([`GroupMap`]), and how far this node applied
//! each group ([`AppliedIndexes`]).
//!
//! The meta group (0) carries the catalog, users, grants and group offsets. Table and topic
//! partitions belong to the data groups 1..=`CLUSTER_DATA_GROUPS`: each owns one range of a
//! stable 64-bit hash of the partition id, so the number of groups does not grow with users
//! or topics, and every member, of any version, maps a partition to the same group. The hash
//! is written out here ([`stable_hash`]): `std`'s hashers may change between Rust releases.
//!
//! Order across groups: a data entry names the meta group's index its leader had applied
//! when it proposed it (`ClusterCommand::AppendAfterMeta`), and a member applies it only once
//! it applied the meta group that far. So a member never holds a table's rows before the
//! catalog change they were checked against (a new column, the table itself, the user who
//! owns the partition). The meta group never waits for a data group, so no wait can cycle.

use tokio::sync::watch;

use super::rpc::GroupId;
use super::ticks::AppliedTicks;

/// The meta group: catalog, users, grants, topics' definitions, group offsets.
pub const META_GROUP: GroupId = 0;

/// Maps partition ids to groups.
#[derive(Clone, Debug)]
pub struct GroupMap {
    data_groups: u32,
    data_prefixes: Vec<&'static str>,
}

impl GroupMap {
    /// `data_groups` data groups (at least 1) for the partitions whose ids start with one of
    /// `data_prefixes`; every other partition is the meta group's.
    pub fn new(data_groups: u32, data_prefixes: Vec<&'static str>) -> GroupMap {
        GroupMap {
            data_groups: data_groups.max(1),
            data_prefixes,
        }
    }

    /// The meta group and every data group, in order.
    pub fn groups(&self) -> impl Iterator<Item = GroupId> {
        META_GROUP..=self.data_groups
    }

    /// Whether `group` is one of the data groups.
    pub fn is_data_group(&self, group: GroupId) -> bool {
        group != META_GROUP && group <= self.data_groups
    }

    /// The group that replicates `partition` (a partition id's text).
    pub fn group_of(&self, partition: &str) -> GroupId {
        if !self.data_prefixes.iter().any(|p| partition.starts_with(p)) {
            return META_GROUP;
        }
        let range =
            (u128::from(stable_hash(partition.as_bytes())) * u128::from(self.data_groups)) >> 64;
        // `range` < `data_groups`, a u32.
        1 + u32::try_from(range).unwrap_or(0)
    }
}

/// FNV-1a, 64 bits, then a 64-bit finalizer (xor-shifts and multiplications, as in
/// MurmurHash3's): FNV alone barely moves its top bits for a change in the last bytes, and
/// partition ids often differ only there (`tp/app.events.7/0`, `/1`, ...), while the group is
/// taken from the top bits.
fn stable_hash(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = bytes.iter().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    });
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// The last log index this node applied in each group, and a way to wait for one; and the
/// last tick it applied in each data group (`ticks.rs`).
#[derive(Debug)]
pub struct AppliedIndexes {
    groups: Vec<watch::Sender<u64>>,
    ticks: AppliedTicks,
}

impl AppliedIndexes {
    /// Nothing applied yet in any of `map`'s groups.
    pub fn new(map: &GroupMap) -> AppliedIndexes {
        let data_groups = usize::try_from(map.data_groups).unwrap_or(usize::MAX);
        AppliedIndexes {
            groups: map.groups().map(|_| watch::Sender::new(0)).collect(),
            ticks: AppliedTicks::new(data_groups),
        }
    }

    /// The ticks this node applied in each data group.
    pub fn ticks(&self) -> &AppliedTicks {
        &self.ticks
    }

    /// The last index applied in `group` (0: none, or a group this node does not have).
    pub fn get(&self, group: GroupId) -> u64 {
        self.sender(group).map_or(0, |sender| *sender.borrow())
    }

    /// `group` applied through `index`; an index below the known one changes nothing.
    pub fn applied(&self, group: GroupId, index: u64) {
        if let Some(sender) = self.sender(group) {
            sender.send_if_modified(|known| {
                let moved = index > *known;
                if moved {
                    *known = index;
                }
                moved
            });
        }
    }

    /// Waits until `group` applied through `index`.
    pub async fn wait_for(&self, group: GroupId, index: u64) {
        let Some(sender) = self.sender(group) else {
            return;
        };
        let mut receiver = sender.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = receiver.wait_for(|applied| *applied >= index).await;
    }

    fn sender(&self, group: GroupId) -> Option<&watch::Sender<u64>> {
        self.groups.get(usize::try_from(group).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn map() -> GroupMap {
        GroupMap::new(3, vec!["t/", "tp/"])
    }

    /// The groups of three fixed ids under [`map`], as this build computes them.
    const FIXED_GROUPS: [GroupId; 3] = [3, 2, 3];

    #[test]
    fn only_table_and_topic_partitions_go_to_data_groups() {
        let map = map();
        assert_eq!(map.group_of("catalog"), META_GROUP);
        assert_eq!(map.group_of("users"), META_GROUP);
        assert_eq!(map.group_of("tx/app.t.1/shared"), META_GROUP);
        assert!(map.is_data_group(map.group_of("t/app.t.1/shared")));
        assert!(map.is_data_group(map.group_of("tp/app.events.7/0")));
        assert_eq!(map.groups().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        assert!(!map.is_data_group(0) && !map.is_data_group(4));
    }

    #[test]
    fn the_map_is_stable() {
        // Fixed values: a member of another build must put these partitions in the same
        // groups, or replicas would disagree on which log holds a partition.
        let fixed: Vec<GroupId> = ["t/app.t.1/shared", "tp/app.events.7/0", "tp/app.events.7/1"]
            .iter()
            .map(|p| map().group_of(p))
            .collect();
        assert_eq!(fixed, FIXED_GROUPS);
        // Computed apart from this code (FNV-1a then the finalizer, in Python).
        assert_eq!(stable_hash(b"tp/app.events.7/0"), 0x87f6_1aea_a790_ed69);
        let map = map();
        let groups: Vec<GroupId> = (0..8)
            .map(|user| map.group_of(&format!("t/app.notes.1/u/{user:02x}.1")))
            .collect();
        let again: Vec<GroupId> = (0..8)
            .map(|user| map.group_of(&format!("t/app.notes.1/u/{user:02x}.1")))
            .collect();
        assert_eq!(groups, again);
    }

    #[test]
    fn many_partitions_spread_over_every_data_group() {
        let map = map();
        let mut counts = [0u32; 4];
        for user in 0..3_000 {
            let group = map.group_of(&format!("t/app.notes.1/u/{user:04x}.1"));
            counts[group as usize] += 1;
        }
        assert_eq!(counts[0], 0);
        for group in 1..=3 {
            // An even spread is 1,000 each; FNV over these ids stays well within 20%.
            assert!((800..=1_200).contains(&counts[group]), "{counts:?}");
        }
    }

    #[test]
    fn partitions_that_differ_in_their_last_bytes_spread_too() {
        let map = map();
        let mut counts = [0u32; 4];
        for partition in 0..24 {
            counts[map.group_of(&format!("tp/app.spread.123456789/{partition}")) as usize] += 1;
        }
        assert!(counts[1..].iter().all(|c| *c >= 4), "{counts:?}");
    }

    #[tokio::test]
    async fn a_wait_ends_once_the_group_applied_that_far() {
        let indexes = Arc::new(AppliedIndexes::new(&map()));
        indexes.applied(META_GROUP, 5);
        indexes.applied(META_GROUP, 3);
        assert_eq!(indexes.get(META_GROUP), 5);
        indexes.wait_for(META_GROUP, 5).await;
        let waiter = tokio::spawn({
            let indexes = indexes.clone();
            async move { indexes.wait_for(META_GROUP, 9).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        indexes.applied(META_GROUP, 9);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the wait ends")
            .expect("the waiter did not panic");
    }
}
