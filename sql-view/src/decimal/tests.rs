use proptest::prelude::*;

use super::*;

fn d(text: &str) -> Decimal {
    Decimal::parse(text, None).unwrap()
}

#[test]
fn parses_and_renders_with_exactly_its_scale() {
    for (text, shown) in [
        ("12.50", "12.50"),
        ("-0.05", "-0.05"),
        ("7", "7"),
        (".5", "0.5"),
        ("5.", "5"),
        ("+003.140", "3.140"),
        ("1e3", "1000"),
        ("1.5e-3", "0.0015"),
        ("-0", "0"),
        (
            "99999999999999999999999999999999999999",
            "99999999999999999999999999999999999999",
        ),
    ] {
        assert_eq!(d(text).to_string(), shown, "{text}");
    }
    for bad in [
        "", "-", ".", "1.2.3", "1e", "abc", "1_000", "--1", "0x10", "1 2",
    ] {
        assert_eq!(
            Decimal::parse(bad, None),
            Err(DecimalError::Invalid),
            "{bad}"
        );
    }
    let too_long = "100000000000000000000000000000000000000";
    assert_eq!(Decimal::parse(too_long, None), Err(DecimalError::Overflow));
}

#[test]
fn rounding_is_half_away_from_zero() {
    let at = |text: &str, scale| Decimal::parse(text, Some(scale)).unwrap().to_string();
    assert_eq!(at("2.345", 2), "2.35");
    assert_eq!(at("-2.345", 2), "-2.35");
    assert_eq!(at("2.344999", 2), "2.34");
    assert_eq!(at("0.005", 2), "0.01");
    assert_eq!(at("0.0049", 2), "0.00");
    assert_eq!(at("12", 2), "12.00");
    assert_eq!(at("9.995", 2), "10.00");
    assert_eq!(d("2.5").rescale(0).unwrap().to_string(), "3");
    assert_eq!(d("-2.5").rescale(0).unwrap().to_string(), "-3");
    assert_eq!(d("1.25").round(1).unwrap().to_string(), "1.3");
    assert_eq!(d("14.5").round(-1).unwrap().to_string(), "10");
    assert_eq!(d("15").round(-1).unwrap().to_string(), "20");
    assert_eq!(d("1.5").round(3).unwrap().to_string(), "1.500");
}

#[test]
fn columns_refuse_more_digits_than_their_precision() {
    assert_eq!(
        d("12345678.994").to_column(10, 2).unwrap().to_string(),
        "12345678.99"
    );
    assert_eq!(
        d("99999999.995").to_column(10, 2),
        Err(DecimalError::Overflow)
    );
    assert_eq!(d("123456789").to_column(10, 2), Err(DecimalError::Overflow));
    assert_eq!(d("-0.001").to_column(1, 1).unwrap().to_string(), "0.0");
}

#[test]
fn arithmetic_is_exact_with_documented_scales() {
    assert_eq!(d("0.10").plus(d("0.2")).unwrap().to_string(), "0.30");
    assert_eq!(d("1.5").minus(d("2.25")).unwrap().to_string(), "-0.75");
    assert_eq!(d("1.5").multiply(d("-2.25")).unwrap().to_string(), "-3.375");
    let third = d("1").divide(d("3")).unwrap().unwrap();
    assert_eq!(third.to_string(), "0.333333");
    let two_thirds = d("2.00").divide(d("3")).unwrap().unwrap();
    assert_eq!(two_thirds.to_string(), "0.666667");
    assert_eq!(d("1").divide(d("0")), None);
    assert_eq!(
        d("7.5").remainder(d("2")).unwrap().unwrap().to_string(),
        "1.5"
    );
    assert_eq!(
        d("-7.5").remainder(d("2")).unwrap().unwrap().to_string(),
        "-1.5"
    );
    let big = d("99999999999999999999999999999999999999");
    assert_eq!(big.plus(d("1")), Err(DecimalError::Overflow));
    assert_eq!(big.multiply(d("10")), Err(DecimalError::Overflow));
    // A product past 38 digits at the summed scale gives up decimals, not the value.
    let long = d("1234567890.1234567890123456789");
    let square = long.multiply(long).unwrap();
    assert_eq!(square.scale(), 19);
    assert_eq!(
        square.to_string(),
        "1524157875323883675.0495351562536198788"
    );
}

#[test]
fn comparison_is_numeric_across_scales() {
    assert_eq!(d("1.50").compare(d("1.5")), Ordering::Equal);
    assert_eq!(d("-1.5").compare(d("1")), Ordering::Less);
    assert_eq!(
        d("0.000000000000000000000000000000000001").compare(d("0")),
        Ordering::Greater
    );
    let big = d("99999999999999999999999999999999999999");
    let small = d("0.9999999999999999999999999999999999999");
    assert_eq!(big.compare(small), Ordering::Greater);
    assert_eq!(big.negate().compare(small), Ordering::Less);
    assert_eq!(d("3.00").as_integer(), Some(3));
    assert_eq!(d("3.10").as_integer(), None);
    assert_eq!(d("3.10").normalized(), d("3.1"));
}

#[test]
fn doubles_convert_as_written() {
    assert_eq!(Decimal::from_f64(0.1, None).unwrap().to_string(), "0.1");
    assert_eq!(
        Decimal::from_f64(2.675, Some(2)).unwrap().to_string(),
        "2.68"
    );
    assert_eq!(
        Decimal::from_f64(f64::NAN, None),
        Err(DecimalError::Invalid)
    );
    assert_eq!(Decimal::from_f64(1e300, None), Err(DecimalError::Overflow));
    assert_eq!(d("12.50").to_f64(), 12.5);
    assert_eq!(d("2.5").to_i64(), Some(3));
}

#[test]
fn damaged_stored_decimals_do_not_panic() {
    let damaged = Decimal {
        mantissa: i128::MIN.to_le_bytes(),
        scale: 200,
    };
    let _ = damaged.to_string();
    let _ = damaged.rescale(2);
    let _ = damaged.plus(d("1"));
    let _ = damaged.multiply(damaged);
    let _ = damaged.divide(d("3"));
    let _ = damaged.remainder(d("3"));
    let _ = damaged.round(-3);
    let _ = damaged.compare(d("1"));
    let _ = damaged.abs();
    let _ = damaged.as_integer();
    let _ = damaged.normalized();
    let _ = damaged.to_f64();
}

/// Mantissas small enough that the reference sums and products fit an i128 exactly.
fn operand() -> impl Strategy<Value = (i128, u8)> {
    (-(10i128.pow(18))..10i128.pow(18), 0u8..=18)
}

proptest! {
    #[test]
    fn text_round_trips_exactly(mantissa in -(10i128.pow(37))..10i128.pow(37), scale in 0u8..=38) {
        let value = Decimal::new(mantissa, scale).unwrap();
        let back = Decimal::parse(&value.to_string(), None).unwrap();
        prop_assert_eq!(back, value);
        prop_assert_eq!(back.mantissa(), mantissa);
        prop_assert_eq!(back.scale(), scale);
    }

    #[test]
    fn arithmetic_agrees_with_scaled_integers((ma, sa) in operand(), (mb, sb) in operand()) {
        let (a, b) = (Decimal::new(ma, sa).unwrap(), Decimal::new(mb, sb).unwrap());
        let scale = sa.max(sb);
        let align = |m: i128, s: u8| m * 10i128.pow(u32::from(scale - s));
        let (xa, xb) = (align(ma, sa), align(mb, sb));
        let sum = a.plus(b).unwrap();
        prop_assert_eq!((sum.mantissa(), sum.scale()), (xa + xb, scale));
        let difference = a.minus(b).unwrap();
        prop_assert_eq!((difference.mantissa(), difference.scale()), (xa - xb, scale));
        let product = a.multiply(b).unwrap();
        prop_assert_eq!((product.mantissa(), product.scale()), (ma * mb, sa + sb));
        prop_assert_eq!(a.compare(b), xa.cmp(&xb));
        prop_assert_eq!(a.compare(b), a.to_f64().partial_cmp(&b.to_f64()).unwrap_or(Ordering::Equal).then(a.compare(b)));
        if mb != 0 {
            let remainder = a.remainder(b).unwrap().unwrap();
            prop_assert_eq!((remainder.mantissa(), remainder.scale()), (xa % xb, scale));
            // The quotient times the divisor is within half a unit of the last decimal of a.
            let quotient = a.divide(b).unwrap().unwrap();
            let exact = (xa as f64) / (xb as f64);
            prop_assert!((quotient.to_f64() - exact).abs() <= 1e-6f64.max(exact.abs() * 1e-12));
        }
    }

    #[test]
    fn rounding_agrees_with_integer_rounding(m in -(10i128.pow(30))..10i128.pow(30), from in 0u8..=30, to in 0u8..=30) {
        let value = Decimal::new(m, from).unwrap();
        let rounded = value.rescale(to);
        let expected = if to >= from {
            let up = m.checked_mul(10i128.pow(u32::from(to - from)));
            match up.filter(|v| v.unsigned_abs() < 10u128.pow(38)) {
                Some(v) => v,
                None => {
                    prop_assert_eq!(rounded, Err(DecimalError::Overflow));
                    return Ok(());
                }
            }
        } else {
            let unit = 10i128.pow(u32::from(from - to));
            let (q, r) = (m / unit, m % unit);
            if r.abs() * 2 >= unit { q + m.signum() } else { q }
        };
        prop_assert_eq!(rounded.map(Decimal::mantissa), Ok(expected));
    }
}
