//! Initial factors: a pure function of (seed, side, index), so every task that needs the
//! starting factor of a row computes the same one without any data being shipped.

use super::task::Side;

/// SplitMix64's output function: a well-mixed 64-bit value from any 64-bit input.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A unit-length vector of `k` Gaussian draws (absolute values when `nonnegative`), as Spark
/// initialises ALS factors.
pub(crate) fn initial_factor(seed: u64, side: Side, index: u32, k: usize, nonnegative: bool) -> Vec<f64> {
    let mut state = mix64(seed ^ mix64(((side as u64) << 32) | u64::from(index)));
    let mut uniform = || {
        state = mix64(state);
        ((state >> 11) + 1) as f64 / (1u64 << 53) as f64
    };
    let mut v: Vec<f64> = (0..k)
        .map(|_| {
            // Box–Muller; the uniforms are in (0, 1], so the logarithm is finite.
            let (u1, u2) = (uniform(), uniform());
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect();
    if nonnegative {
        v.iter_mut().for_each(|x| *x = x.abs());
    }
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_are_unit_length_deterministic_and_distinct() {
        let a = initial_factor(7, Side::User, 3, 10, false);
        assert_eq!(a, initial_factor(7, Side::User, 3, 10, false));
        assert_ne!(a, initial_factor(7, Side::Item, 3, 10, false));
        assert_ne!(a, initial_factor(8, Side::User, 3, 10, false));
        assert!((a.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(
            initial_factor(7, Side::User, 3, 10, true)
                .iter()
                .all(|x| *x >= 0.0)
        );
    }
}
