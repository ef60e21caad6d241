//! [`IndexKey`]: a primary key's encoded bytes as the key index stores them. Short keys (every
//! fixed-width type, short texts) live inside the entry itself, so indexing a row allocates
//! nothing and a lookup touches one cache line instead of two.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

/// Keys up to this many bytes are stored inline (a BIGINT key encodes to 9).
const INLINE_KEY_BYTES_MAX: usize = 22;

#[derive(Clone)]
pub enum IndexKey {
    Inline {
        len: u8,
        bytes: [u8; INLINE_KEY_BYTES_MAX],
    },
    Heap(Box<[u8]>),
}

impl IndexKey {
    pub fn new(key: &[u8]) -> IndexKey {
        match u8::try_from(key.len()) {
            Ok(len) if key.len() <= INLINE_KEY_BYTES_MAX => {
                let mut bytes = [0u8; INLINE_KEY_BYTES_MAX];
                bytes[..key.len()].copy_from_slice(key);
                IndexKey::Inline { len, bytes }
            }
            _ => IndexKey::Heap(Box::from(key)),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            IndexKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            IndexKey::Heap(bytes) => bytes,
        }
    }
}

// Hash and equality are the byte slice's, so a map keyed by `IndexKey` is searched with a
// plain `&[u8]` (the `Borrow` contract).
impl Hash for IndexKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for IndexKey {
    fn eq(&self, other: &IndexKey) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for IndexKey {}

impl Borrow<[u8]> for IndexKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IndexKey({:02x?})", self.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn found_by_its_bytes_whatever_its_length(
            keys in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..50)
        ) {
            let mut index: HashMap<IndexKey, usize, foldhash::fast::RandomState> =
                HashMap::default();
            for (n, key) in keys.iter().enumerate() {
                index.insert(IndexKey::new(key), n);
            }
            for key in &keys {
                let last = keys.iter().rposition(|k| k == key);
                prop_assert_eq!(index.get(key.as_slice()).copied(), last);
                let stored = IndexKey::new(key);
                prop_assert_eq!(stored.as_bytes(), key.as_slice());
            }
        }
    }
}
