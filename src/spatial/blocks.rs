//! Spatial folds: buildings grouped into square blocks, whole blocks assigned to folds, so a
//! test building's neighbours are never in training (nearby buildings share heights, and a
//! random split would hide that).

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;

/// The block (column, row) of each point for square blocks of `size` metres.
pub fn blocks(centroids: &[[f64; 2]], size: f64) -> Vec<(i64, i64)> {
    centroids
        .iter()
        .map(|c| ((c[0] / size).floor() as i64, (c[1] / size).floor() as i64))
        .collect()
}

/// Assigns whole blocks to `k` folds at random (seeded), balancing the buildings per fold:
/// blocks are shuffled, then each goes to the fold with the fewest buildings so far.
pub fn block_folds(centroids: &[[f64; 2]], size: f64, k: usize, seed: u64) -> Vec<usize> {
    let b = blocks(centroids, size);
    let mut counts: BTreeMap<(i64, i64), usize> = BTreeMap::new();
    for key in &b {
        *counts.entry(*key).or_default() += 1;
    }
    let mut keys: Vec<(i64, i64)> = counts.keys().copied().collect();
    keys.shuffle(&mut rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed));
    let mut load = vec![0usize; k.max(1)];
    let mut fold_of: BTreeMap<(i64, i64), usize> = BTreeMap::new();
    for key in keys {
        let f = (0..load.len())
            .min_by_key(|&f| (load[f], f))
            .expect("k >= 1");
        load[f] += counts[&key];
        fold_of.insert(key, f);
    }
    b.iter().map(|key| fold_of[key]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_stay_whole_and_folds_balance() {
        let pts: Vec<[f64; 2]> = (0..1000)
            .map(|i| [(i % 40) as f64 * 30.0, (i / 40) as f64 * 30.0])
            .collect();
        let f = block_folds(&pts, 250.0, 5, 7);
        let b = blocks(&pts, 250.0);
        for i in 0..pts.len() {
            for j in 0..pts.len() {
                if b[i] == b[j] {
                    assert_eq!(f[i], f[j]);
                }
            }
        }
        let mut n = [0usize; 5];
        f.iter().for_each(|&x| n[x] += 1);
        assert!(n.iter().all(|&c| c > 100), "{n:?}");
        assert_eq!(f, block_folds(&pts, 250.0, 5, 7), "seeded");
    }
}
