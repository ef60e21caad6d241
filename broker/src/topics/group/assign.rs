//! The assignment rule of a consumer group, pure: previous owners and current members in,
//! new owners out. No state, no time; the coordinator (`group.rs`) decides when to call it.

use std::cmp::Reverse;

use super::MemberId;

/// The owners after a membership change, given the previous owners (indexed by partition) and
/// the members now in the group (ascending). Balanced: counts differ by at most one; sticky:
/// the members that held the most keep the larger quotas, each member keeps its lowest
/// partitions up to its quota, and only the rest (and partitions of departed members) move,
/// lowest first to the lowest member id short of its quota.
pub(super) fn rebalance(
    previous: &[Option<MemberId>],
    members: &[MemberId],
) -> Vec<Option<MemberId>> {
    if members.is_empty() {
        return vec![None; previous.len()];
    }
    let mut held: Vec<Vec<u32>> = vec![Vec::new(); members.len()];
    let mut unowned: Vec<u32> = Vec::new();
    for (partition, owner) in (0u32..).zip(previous) {
        match owner.and_then(|owner| members.binary_search(&owner).ok()) {
            Some(slot) => held[slot].push(partition),
            None => unowned.push(partition),
        }
    }
    let base = previous.len() / members.len();
    let extra = previous.len() % members.len();
    let mut by_held: Vec<usize> = (0..members.len()).collect();
    by_held.sort_by_key(|&slot| (Reverse(held[slot].len()), members[slot]));
    let mut quota = vec![base; members.len()];
    for &slot in by_held.iter().take(extra) {
        quota[slot] += 1;
    }
    for (partitions, &quota) in held.iter_mut().zip(&quota) {
        if partitions.len() > quota {
            unowned.extend(partitions.drain(quota..));
        }
    }
    unowned.sort_unstable();
    let mut unowned = unowned.into_iter();
    for (partitions, &quota) in held.iter_mut().zip(&quota) {
        partitions.extend(unowned.by_ref().take(quota - partitions.len()));
    }
    assert!(
        unowned.next().is_none(),
        "quotas sum to the partition count"
    );
    let mut owners = vec![None; previous.len()];
    for (partitions, &member_id) in held.iter().zip(members) {
        for &partition in partitions {
            owners[partition as usize] = Some(member_id);
        }
    }
    assert!(
        owners.iter().all(Option::is_some),
        "every partition has an owner"
    );
    owners
}
