//! UUID values (docs/sql.md, "Types"): 16 bytes, compared byte by byte. This module owns the
//! text form: accepted as 32 hex digits in any case, hyphenated `8-4-4-4-12` or not (as
//! PostgreSQL accepts them), rendered lowercase and hyphenated. No version is checked: any 16
//! bytes are a UUID, as in PostgreSQL.

/// Parses a UUID's text; `None` if it is not 32 hex digits in the accepted layouts.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let text = text.trim().as_bytes();
    let hex: Vec<u8> = match text.len() {
        32 => text.to_vec(),
        36 => {
            let hyphens = [8, 13, 18, 23];
            if hyphens.iter().any(|&at| text[at] != b'-') {
                return None;
            }
            text.iter().copied().filter(|b| *b != b'-').collect()
        }
        _ => return None,
    };
    if hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (slot, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *slot = (high * 16 + low) as u8;
    }
    Some(bytes)
}

/// `550e8400-e29b-41d4-a716-446655440000`.
pub fn render_uuid(bytes: &[u8; 16]) -> String {
    let mut text = String::with_capacity(36);
    for (index, byte) in bytes.iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn any_case_with_or_without_hyphens() {
        let lower = parse_uuid("550e8400-e29b-41d4-a716-446655440000");
        assert!(lower.is_some());
        assert_eq!(parse_uuid("550E8400-E29B-41D4-A716-446655440000"), lower);
        assert_eq!(parse_uuid("550e8400e29b41d4a716446655440000"), lower);
        let bytes = lower.unwrap();
        assert_eq!(bytes[0], 0x55);
        assert_eq!(render_uuid(&bytes), "550e8400-e29b-41d4-a716-446655440000");
    }

    #[test]
    fn malformed_uuids_are_refused() {
        for text in [
            "",
            "550e8400-e29b-41d4-a716-44665544000",
            "550e8400-e29b-41d4-a716-4466554400000",
            "550e8400-e29b-41d4-a716-44665544000g",
            "550e8400e-29b-41d4-a716-446655440000",
            "550e8400-e29b-41d4-a716+446655440000",
            "ééééééééééééééééé-41d4-a716-4466",
        ] {
            assert_eq!(parse_uuid(text), None, "{text}");
        }
    }

    proptest! {
        #[test]
        fn render_then_parse_round_trips(bytes in any::<[u8; 16]>()) {
            prop_assert_eq!(parse_uuid(&render_uuid(&bytes)), Some(bytes));
            prop_assert_eq!(parse_uuid(&render_uuid(&bytes).to_uppercase()), Some(bytes));
        }
    }
}
