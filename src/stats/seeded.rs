//! Stateless seeded streams.
//!
//! A counter-based generator (SplitMix64's finaliser over the seed and two keys) rather than a
//! stateful RNG: a draw depends only on (seed, a, b), never on how many draws came before, so
//! results do not change with chunking, reading order or thread count.

/// A well-mixed u64 for (seed, a, b).
///
/// ```
/// use roofline::stats::seeded::{mix, unit};
/// assert_eq!(mix(7, 1, 2), mix(7, 1, 2));
/// assert_ne!(mix(7, 1, 2), mix(7, 2, 1));
/// assert!((0.0..1.0).contains(&unit(mix(7, 1, 2))));
/// ```
pub fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed
        .wrapping_add(a.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(b.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A u64 to a uniform f64 in [0, 1) (its top 53 bits).
pub fn unit(v: u64) -> f64 {
    (v >> 11) as f64 / (1u64 << 53) as f64
}
