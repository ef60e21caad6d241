//! DECIMAL(p,s) values (docs/sql.md, "Types"): an exact scaled integer, `mantissa × 10^-scale`,
//! with at most 38 significant digits, so the mantissa always fits an `i128`. This module owns
//! the text form (parsing, rendering with exactly `scale` decimals), rounding (halves away from
//! zero, as PostgreSQL's NUMERIC), the column's precision check, comparison and exact
//! arithmetic. Results that need more than 128 bits on the way (a product before it is
//! rounded, a dividend scaled up) go through [`crate::wide`].
//!
//! A [`Decimal`] is packed (16 little-endian bytes and a scale byte, alignment 1) because it is
//! also what the stored row archives, behind a box: an inline `i128` would widen and re-align
//! every archived value and make old rows unreadable (see `row/mod.rs`). Stored bytes are not
//! trusted: every operation is checked, so a damaged scale or mantissa gives an error or an
//! odd value, never a panic.
//!
//! It does not own SQL typing (`plan/`) or coercion rules (`coerce.rs`).

use std::cmp::Ordering;
use std::fmt;

use crate::wide::{div_pow10_round, mul_div_pow10_round, mul_div_round};

/// The most digits a DECIMAL holds (also the largest precision and scale).
pub const PRECISION_MAX: u8 = 38;

/// The scale of `a / b`, at least: PostgreSQL gives at least 16 significant digits; we keep
/// the operands' larger scale and at least this many decimals, so `1 / 3` is `0.333333`.
pub const DIVISION_SCALE_MIN: u8 = 6;

/// `10^38`: every mantissa is below it in magnitude.
const LIMIT: u128 = 100_000_000_000_000_000_000_000_000_000_000_000_000;

/// An exact decimal number; see the module comment for the packed layout.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct Decimal {
    mantissa: [u8; 16],
    scale: u8,
}

/// Why a decimal could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// The text is not a number.
    Invalid,
    /// The value needs more digits than allowed.
    Overflow,
}

/// `10^n` for `n <= 38`.
pub(crate) fn pow10(n: u8) -> Option<u128> {
    10u128
        .checked_pow(u32::from(n))
        .filter(|_| n <= PRECISION_MAX)
}

impl Decimal {
    /// `mantissa × 10^-scale`; `None` past 38 digits or a scale above 38.
    pub fn new(mantissa: i128, scale: u8) -> Option<Decimal> {
        (mantissa.unsigned_abs() < LIMIT && scale <= PRECISION_MAX).then(|| Decimal {
            mantissa: mantissa.to_le_bytes(),
            scale,
        })
    }

    /// A stored decimal, read in place (trusted no more than any stored bytes).
    pub(crate) fn from_archived(archived: &ArchivedDecimal) -> Decimal {
        Decimal {
            mantissa: archived.mantissa,
            scale: archived.scale,
        }
    }

    /// An integer, scale 0.
    pub fn from_i64(value: i64) -> Decimal {
        Decimal {
            mantissa: i128::from(value).to_le_bytes(),
            scale: 0,
        }
    }

    /// The scaled integer.
    pub fn mantissa(self) -> i128 {
        i128::from_le_bytes(self.mantissa)
    }

    /// Digits after the decimal point.
    pub fn scale(self) -> u8 {
        self.scale
    }

    fn signed(negative: bool, magnitude: u128, scale: u8) -> Result<Decimal, DecimalError> {
        if magnitude >= LIMIT {
            return Err(DecimalError::Overflow);
        }
        // Below 10^38 < 2^127, so the conversion is exact.
        let value = magnitude as i128;
        Decimal::new(if negative { -value } else { value }, scale).ok_or(DecimalError::Overflow)
    }

    /// The same number with `scale` decimals: rounded (halves away from zero) when fewer,
    /// padded when more; `Overflow` past 38 digits.
    pub fn rescale(self, scale: u8) -> Result<Decimal, DecimalError> {
        let (m, s) = (self.mantissa(), self.scale);
        let magnitude = if scale >= s {
            let factor = pow10(scale - s).ok_or(DecimalError::Overflow)?;
            m.unsigned_abs()
                .checked_mul(factor)
                .ok_or(DecimalError::Overflow)?
        } else {
            div_pow10_round(m.unsigned_abs(), s - scale)
        };
        Decimal::signed(m < 0, magnitude, scale)
    }

    /// The value as a `DECIMAL(precision, scale)` column holds it: rounded to `scale`
    /// decimals, `Overflow` when it needs more than `precision` digits.
    pub fn to_column(self, precision: u8, scale: u8) -> Result<Decimal, DecimalError> {
        let value = self.rescale(scale)?;
        let limit = pow10(precision).ok_or(DecimalError::Overflow)?;
        if value.mantissa().unsigned_abs() >= limit {
            return Err(DecimalError::Overflow);
        }
        Ok(value)
    }

    /// Parses `[+-]digits[.digits][e[+-]digits]` (also `.5` and `5.`). With `scale`, the
    /// number is rounded to that many decimals; without, it keeps the decimals written (at
    /// most 38, rounded beyond).
    pub fn parse(text: &str, scale: Option<u8>) -> Result<Decimal, DecimalError> {
        let parts = Parts::parse(text.trim()).ok_or(DecimalError::Invalid)?;
        let natural = parts.natural_scale();
        let scale = scale.unwrap_or(natural.min(i64::from(PRECISION_MAX)) as u8);
        parts.at_scale(scale)
    }

    /// A double's shortest exact text (`0.1` for 0.1), as a decimal: what the double was
    /// written as, not its binary expansion. NaN and infinities are `Invalid`.
    pub fn from_f64(value: f64, scale: Option<u8>) -> Result<Decimal, DecimalError> {
        if !value.is_finite() {
            return Err(DecimalError::Invalid);
        }
        Decimal::parse(&format!("{value}"), scale)
    }

    /// The nearest double.
    pub fn to_f64(self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// Rounded to an integer (halves away from zero), if it fits an `i64`.
    pub fn to_i64(self) -> Option<i64> {
        i64::try_from(self.rescale(0).ok()?.mantissa()).ok()
    }

    /// Both numbers at the larger of their scales.
    fn aligned(self, other: Decimal) -> Result<(i128, i128, u8), DecimalError> {
        let scale = self.scale.max(other.scale);
        Ok((
            self.rescale(scale)?.mantissa(),
            other.rescale(scale)?.mantissa(),
            scale,
        ))
    }

    /// `self + other`, exact, at the larger scale.
    pub fn plus(self, other: Decimal) -> Result<Decimal, DecimalError> {
        let (a, b, scale) = self.aligned(other)?;
        let sum = a.checked_add(b).ok_or(DecimalError::Overflow)?;
        Decimal::new(sum, scale).ok_or(DecimalError::Overflow)
    }

    /// `self - other`, exact, at the larger scale.
    pub fn minus(self, other: Decimal) -> Result<Decimal, DecimalError> {
        self.plus(other.negate())
    }

    /// `-self`.
    pub fn negate(self) -> Decimal {
        Decimal {
            mantissa: self.mantissa().wrapping_neg().to_le_bytes(),
            scale: self.scale,
        }
    }

    /// `|self|`.
    pub fn abs(self) -> Decimal {
        if self.mantissa() < 0 {
            self.negate()
        } else {
            self
        }
    }

    /// `self × other` at the sum of the scales (at most 38); when the product has more than
    /// 38 digits at that scale, decimals are rounded away until it fits (`Overflow` when even
    /// its integer part does not).
    pub fn multiply(self, other: Decimal) -> Result<Decimal, DecimalError> {
        let (a, b) = (self.mantissa(), other.mantissa());
        let negative = (a < 0) != (b < 0);
        let exact = u32::from(self.scale) + u32::from(other.scale);
        let mut scale = exact.min(u32::from(PRECISION_MAX));
        loop {
            let magnitude = mul_div_pow10_round(a.unsigned_abs(), b.unsigned_abs(), exact - scale);
            match magnitude {
                Some(m) if m < LIMIT => return Decimal::signed(negative, m, scale as u8),
                _ if scale == 0 => return Err(DecimalError::Overflow),
                _ => scale -= 1,
            }
        }
    }

    /// `self / other` with scale `max(6, scale of either)`, fewer decimals when the quotient
    /// would pass 38 digits; `None` when `other` is zero.
    pub fn divide(self, other: Decimal) -> Option<Result<Decimal, DecimalError>> {
        let (a, b) = (self.mantissa(), other.mantissa());
        if b == 0 {
            return None;
        }
        let negative = (a < 0) != (b < 0);
        let preferred = DIVISION_SCALE_MIN
            .max(self.scale)
            .max(other.scale)
            .min(PRECISION_MAX);
        // a/10^sa / (b/10^sb) at scale s is a × 10^(s - sa + sb) / b.
        let mut scale = preferred;
        Some(loop {
            let up = i32::from(scale) - i32::from(self.scale) + i32::from(other.scale);
            let magnitude = u32::try_from(up)
                .ok()
                .and_then(|up| mul_div_round(a.unsigned_abs(), 1, up, b.unsigned_abs()));
            match magnitude {
                Some(m) if m < LIMIT => break Decimal::signed(negative, m, scale),
                _ if scale == 0 || up <= 0 => break Err(DecimalError::Overflow),
                _ => scale -= 1,
            }
        })
    }

    /// `self % other`: the remainder of truncating division, with the sign of `self`, at
    /// the larger scale; `None` when `other` is zero.
    pub fn remainder(self, other: Decimal) -> Option<Result<Decimal, DecimalError>> {
        if other.mantissa() == 0 {
            return None;
        }
        Some(self.aligned(other).and_then(|(a, b, scale)| {
            Decimal::new(a.wrapping_rem(b), scale).ok_or(DecimalError::Overflow)
        }))
    }

    /// `ROUND(self, digits)`: halves away from zero; the scale becomes `digits` (0 to 38),
    /// and a negative `digits` rounds to tens, hundreds, ... at scale 0.
    pub fn round(self, digits: i64) -> Result<Decimal, DecimalError> {
        if digits >= 0 {
            let scale = u8::try_from(digits.min(i64::from(PRECISION_MAX))).unwrap_or(0);
            return self.rescale(scale);
        }
        let tens = u8::try_from(digits.unsigned_abs().min(39)).unwrap_or(39);
        let m = self.mantissa();
        let down = self.scale.saturating_add(tens);
        let magnitude = match pow10(tens) {
            Some(unit) => div_pow10_round(m.unsigned_abs(), down)
                .checked_mul(unit)
                .ok_or(DecimalError::Overflow)?,
            None => 0,
        };
        Decimal::signed(m < 0, magnitude, 0)
    }

    /// Numeric order, exact across scales.
    pub fn compare(self, other: Decimal) -> Ordering {
        match self.aligned(other) {
            Ok((a, b, _)) => a.cmp(&b),
            // Aligning overflowed: the side with fewer decimals has the larger magnitude.
            Err(_) => {
                let larger = if self.scale < other.scale {
                    self
                } else {
                    other.negate()
                };
                larger.mantissa().cmp(&0)
            }
        }
    }

    /// Whether the value is a whole number; then its integer, if it fits an `i64`.
    pub fn as_integer(self) -> Option<i64> {
        let unit = pow10(self.scale)?;
        let m = self.mantissa();
        if m.unsigned_abs() % unit != 0 {
            return None;
        }
        i64::try_from(m / unit as i128).ok()
    }

    /// Without trailing zero decimals (1.50 is 1.5): the one form of equal numbers.
    pub fn normalized(self) -> Decimal {
        let (mut m, mut scale) = (self.mantissa(), self.scale);
        while scale > 0 && m % 10 == 0 {
            m /= 10;
            scale -= 1;
        }
        Decimal::new(m, scale).unwrap_or(self)
    }
}

impl fmt::Display for Decimal {
    /// Exactly `scale` decimals: `12.50`, `-0.05`, `7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.mantissa();
        let digits = m.unsigned_abs().to_string();
        let sign = if m < 0 { "-" } else { "" };
        let scale = usize::from(self.scale);
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{whole}.{fraction}")
    }
}

/// A number's text split into its parts: the sign, the digits (leading zeros dropped) and
/// the power of ten of the last digit.
struct Parts<'a> {
    negative: bool,
    digits: Vec<&'a u8>,
    exponent: i64,
}

impl<'a> Parts<'a> {
    fn parse(text: &'a str) -> Option<Parts<'a>> {
        let bytes = text.as_bytes();
        let (negative, rest) = match bytes.first() {
            Some(b'-') => (true, &bytes[1..]),
            Some(b'+') => (false, &bytes[1..]),
            _ => (false, bytes),
        };
        let (mantissa, exponent) = match rest.iter().position(|b| matches!(b, b'e' | b'E')) {
            Some(at) => {
                let text = std::str::from_utf8(&rest[at + 1..]).ok()?;
                (&rest[..at], text.parse::<i32>().ok()?)
            }
            None => (rest, 0),
        };
        let (whole, fraction) = match mantissa.iter().position(|b| *b == b'.') {
            Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
            None => (mantissa, &mantissa[..0]),
        };
        let all_digits = |part: &[u8]| part.iter().all(u8::is_ascii_digit);
        if whole.len() + fraction.len() == 0 || !all_digits(whole) || !all_digits(fraction) {
            return None;
        }
        let digits: Vec<&u8> = whole
            .iter()
            .chain(fraction)
            .skip_while(|b| **b == b'0')
            .collect();
        Some(Parts {
            negative,
            digits,
            exponent: i64::from(exponent) - fraction.len() as i64,
        })
    }

    /// The decimals the text has (after the exponent), at least 0.
    fn natural_scale(&self) -> i64 {
        (-self.exponent).max(0)
    }

    fn at_scale(&self, scale: u8) -> Result<Decimal, DecimalError> {
        // The digits kept: those down to 10^-scale; the first one dropped decides rounding.
        let drop = -i64::from(scale) - self.exponent;
        let keep = self.digits.len() as i64 - drop.max(0);
        let mut magnitude: u128 = 0;
        for digit in self.digits.iter().take(keep.max(0) as usize) {
            magnitude = magnitude
                .checked_mul(10)
                .and_then(|m| m.checked_add(u128::from(**digit - b'0')))
                .filter(|m| *m < LIMIT)
                .ok_or(DecimalError::Overflow)?;
        }
        if drop < 0 && magnitude != 0 {
            // The text stops before 10^-scale: pad with zeros.
            let pad = u8::try_from(-drop).map_err(|_| DecimalError::Overflow)?;
            let factor = pow10(pad).ok_or(DecimalError::Overflow)?;
            magnitude = magnitude
                .checked_mul(factor)
                .filter(|m| *m < LIMIT)
                .ok_or(DecimalError::Overflow)?;
        } else if drop > 0 && keep >= 0 {
            let first_dropped = self.digits.get(keep as usize).map_or(0, |d| **d - b'0');
            if first_dropped >= 5 {
                magnitude += 1;
            }
        }
        Decimal::signed(self.negative, magnitude, scale)
    }
}

#[cfg(test)]
mod tests;
