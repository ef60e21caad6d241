//! 512-bit unsigned integers, just enough for exact DECIMAL arithmetic (`decimal.rs`): a
//! product of two 38-digit mantissas, or a mantissa scaled up by `10^76` before a division,
//! does not fit 128 bits although the rounded result does. Only multiplication and division
//! with rounding are here; every step is checked, so no input panics.

/// Little-endian 64-bit limbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wide([u64; 8]);

impl Wide {
    fn from_u128(value: u128) -> Wide {
        let mut limbs = [0u64; 8];
        limbs[0] = value as u64;
        limbs[1] = (value >> 64) as u64;
        Wide(limbs)
    }

    fn to_u128(self) -> Option<u128> {
        self.0[2..]
            .iter()
            .all(|limb| *limb == 0)
            .then(|| u128::from(self.0[0]) | (u128::from(self.0[1]) << 64))
    }

    /// `self × factor`; `None` past 512 bits.
    fn mul_u64(self, factor: u64) -> Option<Wide> {
        let mut out = [0u64; 8];
        let mut carry = 0u128;
        for (slot, limb) in out.iter_mut().zip(self.0) {
            let product = u128::from(limb) * u128::from(factor) + carry;
            *slot = product as u64;
            carry = product >> 64;
        }
        (carry == 0).then_some(Wide(out))
    }

    /// `self × factor`, as two 64-bit steps.
    fn mul_u128(self, factor: u128) -> Option<Wide> {
        let low = self.mul_u64(factor as u64)?;
        let high = self.mul_u64((factor >> 64) as u64)?;
        if high.0[7] != 0 {
            return None;
        }
        let mut shifted = [0u64; 8];
        shifted[1..].copy_from_slice(&high.0[..7]);
        low.add(Wide(shifted))
    }

    fn add(self, other: Wide) -> Option<Wide> {
        let mut out = [0u64; 8];
        let mut carry = false;
        for (index, slot) in out.iter_mut().enumerate() {
            let (sum, c1) = self.0[index].overflowing_add(other.0[index]);
            let (sum, c2) = sum.overflowing_add(u64::from(carry));
            *slot = sum;
            carry = c1 || c2;
        }
        (!carry).then_some(Wide(out))
    }

    /// `self × 10^power`; `None` past 512 bits.
    fn mul_pow10(mut self, power: u32) -> Option<Wide> {
        let mut left = power;
        while left > 0 {
            let step = left.min(19);
            self = self.mul_u64(10u64.pow(step))?;
            left -= step;
        }
        Some(self)
    }

    /// Floor division by a 64-bit divisor (not 0); returns the remainder.
    fn div_u64(&mut self, divisor: u64) -> u64 {
        let mut remainder = 0u128;
        for limb in self.0.iter_mut().rev() {
            let current = (remainder << 64) | u128::from(*limb);
            *limb = (current / u128::from(divisor)) as u64;
            remainder = current % u128::from(divisor);
        }
        remainder as u64
    }

    /// Floor division by a divisor below `2^127` (not 0), bit by bit; returns the remainder.
    fn div_u128(&mut self, divisor: u128) -> u128 {
        let mut remainder = 0u128;
        let mut quotient = [0u64; 8];
        for bit in (0..512).rev() {
            let limb = self.0[bit / 64] >> (bit % 64) & 1;
            // Below 2^127 before the shift, so the shift does not overflow.
            remainder = (remainder << 1) | u128::from(limb);
            if remainder >= divisor {
                remainder -= divisor;
                quotient[bit / 64] |= 1 << (bit % 64);
            }
        }
        self.0 = quotient;
        remainder
    }
}

/// `round(a × b × 10^up / divisor)`, halves away from zero (rounding the magnitude up); `None`
/// when the result passes 128 bits, or `divisor` is 0 or not below `2^127`.
pub(crate) fn mul_div_round(a: u128, b: u128, up: u32, divisor: u128) -> Option<u128> {
    if divisor == 0 || divisor >= 1 << 127 {
        return None;
    }
    let mut n = Wide::from_u128(a).mul_u128(b)?.mul_pow10(up)?;
    let remainder = n.div_u128(divisor);
    let quotient = n.to_u128()?;
    if remainder >= divisor - remainder {
        quotient.checked_add(1)
    } else {
        Some(quotient)
    }
}

/// `round(a × b / 10^down)`, halves away from zero; `None` when the result passes 128 bits.
pub(crate) fn mul_div_pow10_round(a: u128, b: u128, down: u32) -> Option<u128> {
    let mut n = Wide::from_u128(a).mul_u128(b)?;
    if down == 0 {
        return n.to_u128();
    }
    // Floors compose, so dividing by 10^(down-1) first and then by 10 keeps the first
    // dropped digit, which alone decides a half-away-from-zero rounding.
    let mut left = down - 1;
    while left > 0 {
        let step = left.min(19);
        n.div_u64(10u64.pow(step));
        left -= step;
    }
    let last = n.div_u64(10);
    let quotient = n.to_u128()?;
    if last >= 5 {
        quotient.checked_add(1)
    } else {
        Some(quotient)
    }
}

/// `round(a / 10^down)`, halves away from zero (any `down`; past 39 digits the result is 0).
pub(crate) fn div_pow10_round(a: u128, down: u8) -> u128 {
    mul_div_pow10_round(a, 1, u32::from(down)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_past_128_bits_round_back_into_range() {
        let big = 10u128.pow(37) + 7;
        // (10^37 + 7)^2 / 10^37 = 10^37 + 14 + 49 / 10^37 -> rounds to 10^37 + 14.
        assert_eq!(mul_div_pow10_round(big, big, 37), Some(10u128.pow(37) + 14));
        assert_eq!(mul_div_pow10_round(u128::MAX, u128::MAX, 0), None);
        assert_eq!(mul_div_pow10_round(15, 1, 1), Some(2));
        assert_eq!(mul_div_pow10_round(14, 1, 1), Some(1));
        assert_eq!(div_pow10_round(123, 200), 0);
    }

    #[test]
    fn division_rounds_halves_up_and_refuses_bad_divisors() {
        assert_eq!(mul_div_round(1, 1, 6, 3), Some(333_333));
        assert_eq!(mul_div_round(2, 1, 6, 3), Some(666_667));
        assert_eq!(mul_div_round(1, 1, 0, 2), Some(1));
        assert_eq!(
            mul_div_round(1, 1, 76, 10u128.pow(38)),
            Some(10u128.pow(38))
        );
        assert_eq!(mul_div_round(1, 1, 0, 0), None);
        assert_eq!(mul_div_round(1, 1, 0, u128::MAX), None);
        assert_eq!(mul_div_round(u128::MAX, u128::MAX, 0, 1), None);
    }
}
