//! The model check of [`TopKWindow`]: a client that starts from the window's visible rows and
//! applies only the deltas always holds exactly rows `offset .. offset + limit` of the
//! sorted table, whatever the writes, with refills read from the model table when asked.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

/// (sort value, id): ids are unique, so the order is total.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key(i8, u8);

impl WindowKey for Key {
    fn same_row(&self, other: &Self) -> bool {
        self.1 == other.1
    }
}

#[derive(Clone, Debug)]
enum Write {
    Upsert { id: u8, value: i8 },
    Delete { id: u8 },
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        3 => (0u8..24, -20i8..20).prop_map(|(id, value)| Write::Upsert { id, value }),
        1 => (0u8..24).prop_map(|id| Write::Delete { id }),
    ]
}

/// id -> (value, version); rows with a value divisible by 5 do not match the query.
type Table = BTreeMap<u8, (i8, u64)>;

fn matches(value: i8) -> bool {
    value % 5 != 0
}

fn result(table: &Table) -> Vec<(Key, u64)> {
    let mut rows: Vec<(Key, u64)> = table
        .iter()
        .filter(|(_, (value, _))| matches(*value))
        .map(|(id, (value, version))| (Key(*value, *id), *version))
        .collect();
    rows.sort();
    rows
}

fn refill(window: &mut TopKWindow<Key, ()>, table: &Table, delta: &mut Delta<Key, ()>) {
    let all = result(table);
    let complete = all.len() <= window.capacity();
    let rows = all
        .into_iter()
        .take(window.capacity())
        .map(|(key, seq)| (key, WindowRow { seq, payload: () }));
    window.refill(rows, complete, delta);
}

/// Apply `delta` to the client's rows (id -> version), checking each entry against them.
fn apply(client: &mut BTreeMap<u8, u64>, delta: &Delta<Key, ()>) -> Result<(), TestCaseError> {
    for entry in &delta.entries {
        if let Some((key, row)) = &entry.left {
            prop_assert_eq!(client.remove(&key.1), Some(row.seq), "left a row not held");
        }
    }
    for entry in &delta.entries {
        if let Some((key, row)) = &entry.entered {
            prop_assert!(client.insert(key.1, row.seq).is_none(), "entered twice");
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn deltas_keep_the_client_equal_to_the_window_of_the_result(
        writes in prop::collection::vec(write(), 0..300),
        offset in 0usize..4,
        limit in 1usize..6,
        spare_max in 0usize..4,
    ) {
        let mut table = Table::new();
        let mut window = TopKWindow::new(offset, limit, spare_max);
        let mut delta = Delta::new();
        refill(&mut window, &table, &mut delta);
        prop_assert!(delta.is_empty());
        let mut client: BTreeMap<u8, u64> = BTreeMap::new();
        for (version, write) in (1u64..).zip(writes) {
            let mut delta = Delta::new();
            let (id, new) = match write {
                Write::Upsert { id, value } => (id, Some(value)),
                Write::Delete { id } => (id, None),
            };
            if let Some((value, _)) = table.get(&id).copied() {
                if matches(value) {
                    window.remove(&Key(value, id), &mut delta);
                }
            }
            match new {
                Some(value) => {
                    table.insert(id, (value, version));
                    if matches(value) {
                        window.insert(Key(value, id), WindowRow { seq: version, payload: () }, &mut delta);
                    }
                }
                None => {
                    table.remove(&id);
                }
            }
            if window.needs_refill() {
                refill(&mut window, &table, &mut delta);
            }
            delta.settle();
            apply(&mut client, &delta)?;
            let expected: BTreeMap<u8, u64> = result(&table)
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(|(key, version)| (key.1, version))
                .collect();
            prop_assert_eq!(&client, &expected);
            let shown: BTreeMap<u8, u64> = window.visible().map(|(k, r)| (k.1, r.seq)).collect();
            prop_assert_eq!(&shown, &expected);
        }
    }
}

/// Spare rows replace rows that leave from memory: deleting the first row 25 times over a
/// table of 100 with 10 visible and 10 spare reads the table twice (after the 11th and the
/// 22nd delete), not 25 times.
#[test]
fn spare_rows_spare_reads_of_the_table() {
    let mut table: Table = (0u8..100)
        .map(|id| (id, ((id / 2) as i8 - 40, 1)))
        .collect();
    table.retain(|_, (value, _)| matches(*value));
    let mut window = TopKWindow::new(0, 10, 10);
    refill(&mut window, &table, &mut Delta::new());
    let mut refills = 0;
    for _ in 0..25 {
        let (id, (value, _)) = result(&table)
            .first()
            .map(|(key, version)| (key.1, (key.0, *version)))
            .expect("rows left");
        table.remove(&id);
        let mut delta = Delta::new();
        window.remove(&Key(value, id), &mut delta);
        if window.needs_refill() {
            refills += 1;
            refill(&mut window, &table, &mut delta);
        }
        assert_eq!(delta.entries.len(), 2, "one row left, the next entered");
    }
    assert_eq!(refills, 2);
}
