use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

const TIMEOUT_MS: u64 = 1_000;

fn group(partitions: u32) -> GroupCoordinator {
    let config = GroupConfig {
        partitions,
        session_timeout_ms: TIMEOUT_MS,
        member_id_first: 7,
    };
    match GroupCoordinator::new(config) {
        Ok(group) => group,
        Err(error) => panic!("valid config refused: {error}"),
    }
}

fn join(group: &mut GroupCoordinator, now_ms: u64) -> JoinOutcome {
    match group.join(None, now_ms) {
        Ok(outcome) => outcome,
        Err(error) => panic!("join refused: {error}"),
    }
}

#[test]
fn first_member_owns_every_partition() {
    let mut group = group(4);
    let first = join(&mut group, 0);
    assert_eq!(first.member_id, MemberId(7));
    assert_eq!(first.generation, Generation(1));
    assert_eq!(first.assignment, vec![0, 1, 2, 3]);
}

#[test]
fn second_member_takes_half_and_the_first_keeps_the_rest() {
    let mut group = group(4);
    let first = join(&mut group, 0);
    let second = join(&mut group, 10);
    assert_eq!(second.generation, Generation(2));
    assert_eq!(second.assignment, vec![2, 3]);
    assert_eq!(group.assignment(first.member_id), Ok(&[0, 1][..]));
    let told = group.heartbeat(first.member_id, first.generation, 20);
    let reassigned = HeartbeatOutcome::Reassigned {
        generation: Generation(2),
        assignment: vec![0, 1],
    };
    assert_eq!(told, Ok(reassigned));
    assert_eq!(
        group.heartbeat(first.member_id, Generation(2), 30),
        Ok(HeartbeatOutcome::Current)
    );
}

#[test]
fn sync_gives_the_current_assignment_and_keeps_the_member_alive() {
    let mut group = group(4);
    let first = join(&mut group, 0);
    let second = join(&mut group, 10);
    // A sync at 900 is a heartbeat: at 1_500 only the silent second member is expired.
    let synced = group.sync(first.member_id, 900);
    let expected = JoinOutcome {
        member_id: first.member_id,
        generation: Generation(2),
        assignment: vec![0, 1],
    };
    assert_eq!(synced, Ok(expected));
    assert_eq!(group.expire(1_500), vec![second.member_id]);
    assert_eq!(
        group.sync(second.member_id, 1_600),
        Err(GroupError::UnknownMember(second.member_id))
    );
    let alone = group.sync(first.member_id, 1_600);
    assert_eq!(alone.map(|o| o.assignment), Ok(vec![0, 1, 2, 3]));
}

#[test]
fn a_retried_join_changes_nothing_and_an_unknown_hint_gets_a_fresh_id() {
    let mut group = group(3);
    let first = join(&mut group, 0);
    let again = group.join(Some(first.member_id), 5);
    assert_eq!(again, Ok(first.clone()));
    let stranger = group
        .join(Some(MemberId(1_000)), 6)
        .map(|outcome| outcome.member_id);
    assert_eq!(stranger, Ok(MemberId(8)));
    assert_eq!(group.generation(), Generation(2));
}

#[test]
fn heartbeats_from_strangers_and_the_future_are_refused() {
    let mut group = group(2);
    let first = join(&mut group, 0);
    let unknown = group.heartbeat(MemberId(99), Generation(1), 1);
    assert_eq!(unknown, Err(GroupError::UnknownMember(MemberId(99))));
    let future = group.heartbeat(first.member_id, Generation(5), 1);
    let refused = GroupError::IllegalGeneration {
        member: Generation(5),
        current: Generation(1),
    };
    assert_eq!(future, Err(refused));
}

#[test]
fn leaving_hands_the_partitions_to_the_others() {
    let mut group = group(5);
    let first = join(&mut group, 0);
    let second = join(&mut group, 0);
    assert_eq!(group.leave(second.member_id), Ok(Generation(3)));
    assert_eq!(group.assignment(first.member_id), Ok(&[0, 1, 2, 3, 4][..]));
    let again = group.leave(second.member_id);
    assert_eq!(again, Err(GroupError::UnknownMember(second.member_id)));
    assert_eq!(group.leave(first.member_id), Ok(Generation(4)));
    assert_eq!(group.owner(0), Ok(None));
}

#[test]
fn a_silent_member_expires_just_after_its_session_timeout() {
    let mut group = group(2);
    let silent = join(&mut group, 0);
    let alive = join(&mut group, 0);
    assert_eq!(
        group.heartbeat(alive.member_id, alive.generation, 900),
        Ok(HeartbeatOutcome::Current)
    );
    assert_eq!(group.expiry_deadline_ms(), Some(TIMEOUT_MS + 1));
    assert_eq!(group.expire(TIMEOUT_MS), vec![]);
    assert_eq!(group.expire(TIMEOUT_MS + 1), vec![silent.member_id]);
    assert_eq!(group.generation(), Generation(3));
    assert_eq!(group.assignment(alive.member_id), Ok(&[0, 1][..]));
    let late = group.heartbeat(silent.member_id, silent.generation, TIMEOUT_MS + 2);
    assert_eq!(late, Err(GroupError::UnknownMember(silent.member_id)));
}

#[test]
fn a_heartbeat_after_the_timeout_finds_the_member_gone() {
    let mut group = group(1);
    let member = join(&mut group, 0);
    let late = group.heartbeat(member.member_id, member.generation, TIMEOUT_MS + 1);
    assert_eq!(late, Err(GroupError::UnknownMember(member.member_id)));
    assert_eq!(group.generation(), Generation(2));
}

#[test]
fn a_join_that_expires_members_rebalances_once() {
    let mut group = group(3);
    let silent = join(&mut group, 0);
    let alive = join(&mut group, 600);
    let newcomer = join(&mut group, TIMEOUT_MS + 1);
    assert_eq!(newcomer.generation, Generation(3));
    assert_eq!(
        group.assignment(silent.member_id),
        Err(GroupError::UnknownMember(silent.member_id))
    );
    // The survivor held the larger share, so it keeps two; the newcomer takes the rest.
    assert_eq!(group.assignment(alive.member_id), Ok(&[0, 2][..]));
    assert_eq!(newcomer.assignment, vec![1]);
}

#[test]
fn commits_are_fenced_by_owner_and_generation() {
    let mut group = group(2);
    let first = join(&mut group, 0);
    assert_eq!(
        group.commit(first.member_id, first.generation, 1, 40),
        Ok(OffsetCommit {
            partition: 1,
            seq: 40
        })
    );
    let second = join(&mut group, 1);
    // The first member missed the rebalance: even its kept partition 0 is refused until it
    // hears of generation 2.
    let stale = group.commit(first.member_id, first.generation, 0, 41);
    let refused = GroupError::IllegalGeneration {
        member: Generation(1),
        current: Generation(2),
    };
    assert_eq!(stale, Err(refused));
    let moved = group.commit(first.member_id, second.generation, 1, 41);
    let not_owner = GroupError::NotAssigned {
        member: first.member_id,
        partition: 1,
        generation: Generation(2),
    };
    assert_eq!(moved, Err(not_owner));
    assert_eq!(
        group.commit(second.member_id, second.generation, 1, 41),
        Ok(OffsetCommit {
            partition: 1,
            seq: 41
        })
    );
    let missing = group.commit(second.member_id, second.generation, 2, 1);
    assert_eq!(
        missing,
        Err(GroupError::UnknownPartition {
            partition: 2,
            partitions: 2
        })
    );
    let stranger = group.commit(MemberId(1), second.generation, 0, 1);
    assert_eq!(stranger, Err(GroupError::UnknownMember(MemberId(1))));
}

#[test]
fn members_beyond_the_partition_count_get_nothing() {
    let mut group = group(2);
    let outcomes: Vec<JoinOutcome> = (0..3).map(|_| join(&mut group, 0)).collect();
    assert_eq!(outcomes[2].assignment, Vec::<u32>::new());
    let owned: usize = outcomes
        .iter()
        .map(|o| group.assignment(o.member_id).map_or(0, <[u32]>::len))
        .sum();
    assert_eq!(owned, 2);
}

#[test]
fn member_ids_wrap_and_skip_ids_in_use() {
    let config = GroupConfig {
        partitions: 1,
        session_timeout_ms: TIMEOUT_MS,
        member_id_first: u64::MAX,
    };
    let mut group = GroupCoordinator::new(config).map_err(|e| e.to_string());
    let Ok(group) = group.as_mut() else {
        panic!("valid config refused")
    };
    let ids: Vec<MemberId> = (0..2).map(|_| join(group, 0).member_id).collect();
    assert_eq!(ids, vec![MemberId(u64::MAX), MemberId(0)]);
}

#[test]
fn the_group_is_bounded() {
    let mut group = group(1);
    for _ in 0..MEMBERS_PER_GROUP_MAX {
        join(&mut group, 0);
    }
    let full = group.join(None, 0);
    assert_eq!(
        full,
        Err(GroupError::GroupFull {
            max: MEMBERS_PER_GROUP_MAX
        })
    );
}

#[test]
fn bad_configs_are_refused() {
    let zero = GroupCoordinator::new(GroupConfig::new(0, 0)).err();
    assert_eq!(
        zero,
        Some(GroupConfigError::Partitions {
            partitions: 0,
            max: TOPIC_PARTITIONS_MAX
        })
    );
    let config = GroupConfig {
        session_timeout_ms: SESSION_TIMEOUT_MS_MIN - 1,
        ..GroupConfig::new(1, 0)
    };
    let short = GroupCoordinator::new(config).err();
    let refused = GroupConfigError::SessionTimeout {
        timeout_ms: SESSION_TIMEOUT_MS_MIN - 1,
        min: SESSION_TIMEOUT_MS_MIN,
        max: SESSION_TIMEOUT_MS_MAX,
    };
    assert_eq!(short, Some(refused));
}

/// One step of the model test. Members are named by an index into every id ever handed out
/// (so departed members keep calling); `None` or an empty list means a made-up id.
#[derive(Debug, Clone)]
enum Op {
    Join {
        hint: Option<usize>,
    },
    /// `drift` shifts the member's known generation: -1 stale, 0 as told, +1 from the future.
    Heartbeat {
        member: usize,
        drift: i8,
    },
    Leave {
        member: usize,
    },
    Advance {
        ms: u64,
    },
    Expire,
    Commit {
        member: usize,
        partition: u32,
        stale: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => proptest::option::of(0..8usize).prop_map(|hint| Op::Join { hint }),
        4 => (0..8usize, -1i8..=1).prop_map(|(member, drift)| Op::Heartbeat { member, drift }),
        1 => (0..8usize).prop_map(|member| Op::Leave { member }),
        3 => prop_oneof![0..TIMEOUT_MS * 3 / 4, Just(TIMEOUT_MS / 2), Just(1)]
            .prop_map(|ms| Op::Advance { ms }),
        2 => Just(Op::Expire),
        4 => (0..8usize, 0..13u32, any::<bool>())
            .prop_map(|(member, partition, stale)| Op::Commit { member, partition, stale }),
    ]
}

/// The reference: who is in the group and when each last heartbeated, the generation, and
/// what each member was last told (its generation and assignment).
#[derive(Default)]
struct Model {
    now_ms: u64,
    generation: u64,
    heartbeats_ms: BTreeMap<MemberId, u64>,
    told: BTreeMap<MemberId, (Generation, Vec<u32>)>,
    issued: Vec<MemberId>,
}

impl Model {
    fn pick(&self, index: usize) -> MemberId {
        if self.issued.is_empty() {
            return MemberId(u64::MAX / 2);
        }
        self.issued[index % self.issued.len()]
    }

    fn expire(&mut self) -> Vec<MemberId> {
        let expired = self.remove_expired();
        if !expired.is_empty() {
            self.generation += 1;
        }
        expired
    }

    fn remove_expired(&mut self) -> Vec<MemberId> {
        let now_ms = self.now_ms;
        let expired: Vec<MemberId> = self
            .heartbeats_ms
            .iter()
            .filter(|(_, &at)| now_ms.saturating_sub(at) > TIMEOUT_MS)
            .map(|(id, _)| *id)
            .collect();
        self.heartbeats_ms.retain(|id, _| !expired.contains(id));
        expired
    }
}

/// Applies one op to both; checks each answer against the model.
fn step(group: &mut GroupCoordinator, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let now_ms = model.now_ms;
    match *op {
        Op::Join { hint } => {
            let hint = hint.map(|index| model.pick(index));
            let outcome = group.join(hint, now_ms);
            let expired = model.remove_expired();
            let outcome = outcome.map_err(|e| TestCaseError::fail(e.to_string()))?;
            match hint.filter(|id| model.heartbeats_ms.contains_key(id)) {
                Some(id) => prop_assert_eq!(outcome.member_id, id),
                None => {
                    prop_assert!(!model.heartbeats_ms.contains_key(&outcome.member_id));
                    model.issued.push(outcome.member_id);
                }
            }
            // One rebalance for the expiries and the new member together.
            if !expired.is_empty() || !model.heartbeats_ms.contains_key(&outcome.member_id) {
                model.generation += 1;
            }
            model.heartbeats_ms.insert(outcome.member_id, now_ms);
            prop_assert_eq!(outcome.generation, Generation(model.generation));
            model
                .told
                .insert(outcome.member_id, (outcome.generation, outcome.assignment));
        }
        Op::Heartbeat { member, drift } => {
            let id = model.pick(member);
            let known = model
                .told
                .get(&id)
                .map_or(0, |(generation, _)| generation.0);
            let sent = Generation(known.saturating_add_signed(i64::from(drift)));
            let answer = group.heartbeat(id, sent, now_ms);
            model.expire();
            let current = Generation(model.generation);
            let Some(heartbeat_ms) = model.heartbeats_ms.get_mut(&id) else {
                prop_assert_eq!(answer, Err(GroupError::UnknownMember(id)));
                return Ok(());
            };
            if sent > current {
                let refused = GroupError::IllegalGeneration {
                    member: sent,
                    current,
                };
                prop_assert_eq!(answer, Err(refused));
            } else {
                *heartbeat_ms = now_ms;
                match answer {
                    Ok(HeartbeatOutcome::Current) => prop_assert_eq!(sent, current),
                    Ok(HeartbeatOutcome::Reassigned {
                        generation,
                        assignment,
                    }) => {
                        prop_assert!(sent < current);
                        prop_assert_eq!(generation, current);
                        model.told.insert(id, (generation, assignment));
                    }
                    Err(error) => return Err(TestCaseError::fail(error.to_string())),
                }
            }
        }
        Op::Leave { member } => {
            let id = model.pick(member);
            let answer = group.leave(id);
            if model.heartbeats_ms.remove(&id).is_some() {
                model.generation += 1;
                prop_assert_eq!(answer, Ok(Generation(model.generation)));
            } else {
                prop_assert_eq!(answer, Err(GroupError::UnknownMember(id)));
            }
        }
        Op::Advance { ms } => model.now_ms += ms,
        Op::Expire => {
            let deadline = group.expiry_deadline_ms();
            let expired = group.expire(now_ms);
            prop_assert_eq!(&expired, &model.expire());
            prop_assert_eq!(!expired.is_empty(), deadline.is_some_and(|at| at <= now_ms));
            // Every member left (checked equal to the model's) heartbeated within the timeout.
            prop_assert!(model
                .heartbeats_ms
                .values()
                .all(|&at| now_ms - at <= TIMEOUT_MS));
        }
        Op::Commit {
            member,
            partition,
            stale,
        } => {
            let id = model.pick(member);
            let (told, assigned) = model.told.get(&id).cloned().unwrap_or_default();
            let sent = Generation(told.0.saturating_sub(u64::from(stale)));
            let owner = group.owner(partition).ok().flatten();
            let answer = group.commit(id, sent, partition, 5);
            let accepted = model.heartbeats_ms.contains_key(&id)
                && sent.0 == model.generation
                && owner == Some(id);
            prop_assert_eq!(answer.is_ok(), accepted, "commit {:?}: {:?}", op, answer);
            if accepted {
                // The member commits only what it was told it owns in this generation.
                prop_assert!(assigned.contains(&partition));
                prop_assert_eq!(answer, Ok(OffsetCommit { partition, seq: 5 }));
            }
        }
    }
    Ok(())
}

/// The invariants that hold after every step, whatever it was.
fn check(group: &GroupCoordinator, model: &Model, before: Generation) -> Result<(), TestCaseError> {
    let members: Vec<MemberId> = group.members().collect();
    let expected: Vec<MemberId> = model.heartbeats_ms.keys().copied().collect();
    prop_assert_eq!(&members, &expected);
    prop_assert!(group.generation() >= before);
    prop_assert_eq!(group.generation(), Generation(model.generation));
    let partitions = group.config().partitions;
    let mut owned = BTreeMap::new();
    for partition in 0..partitions {
        let owner = group
            .owner(partition)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(owner.is_some(), !members.is_empty());
        if let Some(owner) = owner {
            prop_assert!(members.contains(&owner));
            owned.entry(owner).or_insert_with(Vec::new).push(partition);
        }
    }
    let mut counts = Vec::new();
    for &member in &members {
        let listed = group
            .assignment(member)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected = owned.get(&member).cloned().unwrap_or_default();
        prop_assert_eq!(listed, &expected[..]);
        counts.push(listed.len());
        // What a member was told for the current generation is still its assignment.
        if let Some((told, assignment)) = model.told.get(&member) {
            if *told == group.generation() {
                prop_assert_eq!(assignment, &expected);
            }
        }
    }
    if let (Some(min), Some(max)) = (counts.iter().min(), counts.iter().max()) {
        prop_assert!(max - min <= 1, "unbalanced: {:?}", counts);
    }
    Ok(())
}

/// Sticky: across a step, a member still present kept all it had (if its count did not
/// shrink) or kept only partitions it had (if it did), and no more partitions moved than
/// balance needs: the most that can stay put is when the largest holders get the larger
/// quotas.
fn check_sticky(before: &GroupCoordinator, after: &GroupCoordinator) -> Result<(), TestCaseError> {
    let mut held = Vec::new();
    let mut kept = 0;
    for member in after.members() {
        let (Ok(old), Ok(new)) = (before.assignment(member), after.assignment(member)) else {
            continue;
        };
        let (small, large) = if old.len() <= new.len() {
            (old, new)
        } else {
            (new, old)
        };
        prop_assert!(
            small.iter().all(|p| large.contains(p)),
            "{:?} moved to {:?}",
            old,
            new
        );
        held.push(old.len());
        kept += small.len();
    }
    let (partitions, members) = (after.config().partitions as usize, after.members().count());
    if members > 0 {
        held.sort_unstable_by(|a, b| b.cmp(a));
        let quota = |rank: usize| partitions / members + usize::from(rank < partitions % members);
        let most: usize = held
            .iter()
            .enumerate()
            .map(|(rank, &n)| n.min(quota(rank)))
            .sum();
        prop_assert_eq!(kept, most, "held {:?}", held);
    }
    Ok(())
}

proptest! {
    #[test]
    fn the_group_matches_the_model(
        partitions in 1..13u32,
        member_id_first in prop_oneof![Just(u64::MAX - 2), any::<u64>()],
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let config = GroupConfig { partitions, session_timeout_ms: TIMEOUT_MS, member_id_first };
        let fresh = GroupCoordinator::new(config).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut group = fresh.clone();
        let mut model = Model::default();
        for op in &ops {
            let before = group.clone();
            step(&mut group, &mut model, op)?;
            check(&group, &model, before.generation())?;
            check_sticky(&before, &group)?;
        }
        // A silent group is empty after the session timeout and one expire call.
        let mut silent = group.clone();
        silent.expire(model.now_ms + TIMEOUT_MS + 1);
        prop_assert_eq!(silent.members().count(), 0);
        prop_assert_eq!(silent.owner(0), Ok(None));
        // Deterministic: the same calls give the same state.
        let mut replay = fresh;
        let mut replay_model = Model::default();
        for op in &ops {
            step(&mut replay, &mut replay_model, op)?;
        }
        prop_assert_eq!(replay, group);
    }
}
