//! The filter-aware change rule, without I/O: given the version of a row a subscription saw
//! before a write (if any) and the version the write left (if any), which change the
//! subscription receives. A row moving out of the filter is a delete for it, moving in is an
//! insert; a write that touches no matching version sends nothing.

/// What a subscription receives for one written row version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The new version, which matches (the old one did not, or there was none).
    Insert,
    /// The new version and the old one, both matching.
    Update,
    /// The old version, which matched; the new one does not, or the row is deleted.
    Delete,
}

/// The change for a subscription whose filter is `matches`, when `old` (the previous live
/// version of the key, `None` if there was none or it was deleted) is replaced by `new`
/// (`None` for a delete).
pub fn classify<R>(
    old: Option<&R>,
    new: Option<&R>,
    mut matches: impl FnMut(&R) -> bool,
) -> Option<ChangeKind> {
    let old_matches = old.is_some_and(&mut matches);
    let new_matches = new.is_some_and(&mut matches);
    match (old_matches, new_matches) {
        (false, true) => Some(ChangeKind::Insert),
        (true, true) => Some(ChangeKind::Update),
        (true, false) => Some(ChangeKind::Delete),
        (false, false) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// A write to key `key`: `Some(value)` upserts, `None` deletes.
    #[derive(Clone, Debug)]
    struct Write {
        key: u8,
        value: Option<u8>,
    }

    fn write() -> impl Strategy<Value = Write> {
        (0u8..8, prop::option::weighted(0.75, any::<u8>()))
            .prop_map(|(key, value)| Write { key, value })
    }

    proptest! {
        /// The model check of the rule: a client that starts from the filtered state and
        /// applies only the changes `classify` emits always holds exactly the filtered state
        /// of the table, and each change refers to a row it holds (update, delete) or does
        /// not hold (insert).
        #[test]
        fn applying_the_changes_keeps_the_filtered_result(
            writes in prop::collection::vec(write(), 0..200),
            threshold in any::<u8>(),
        ) {
            let matches = |v: &u8| *v >= threshold;
            let mut table: BTreeMap<u8, u8> = BTreeMap::new();
            let mut client: BTreeMap<u8, u8> = BTreeMap::new();
            for Write { key, value } in writes {
                let old = table.get(&key).copied();
                match classify(old.as_ref(), value.as_ref(), matches) {
                    Some(ChangeKind::Insert) => {
                        prop_assert!(!client.contains_key(&key));
                        client.insert(key, value.unwrap_or_default());
                    }
                    Some(ChangeKind::Update) => {
                        prop_assert_eq!(client.get(&key).copied(), old);
                        client.insert(key, value.unwrap_or_default());
                    }
                    Some(ChangeKind::Delete) => {
                        prop_assert_eq!(client.remove(&key), old);
                    }
                    None => {}
                }
                match value {
                    Some(v) => table.insert(key, v),
                    None => table.remove(&key),
                };
                let expected: BTreeMap<u8, u8> =
                    table.iter().filter(|(_, v)| matches(v)).map(|(k, v)| (*k, *v)).collect();
                prop_assert_eq!(&client, &expected);
            }
        }
    }
}
