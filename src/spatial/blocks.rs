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
    block_folds_counting(centroids, &vec![true; centroids.len()], size, k, seed)
}

/// [`block_folds`], balancing only the buildings with `counted` set: in a city where labels
/// cover part of the footprints, folds balanced by all buildings can test on very different
/// numbers of labelled ones.
pub fn block_folds_counting(
    centroids: &[[f64; 2]],
    counted: &[bool],
    size: f64,
    k: usize,
    seed: u64,
) -> Vec<usize> {
    let b = blocks(centroids, size);
    let mut counts: BTreeMap<(i64, i64), usize> = BTreeMap::new();
    for (key, &c) in b.iter().zip(counted) {
        *counts.entry(*key).or_default() += c as usize;
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

/// For each point, whether it lies within `buffer` metres of a block of `fold` (its own block
/// included): training buildings that close to a test block share its context and neighbours,
/// so block CV that keeps them is optimistic.
pub fn near_fold(
    centroids: &[[f64; 2]],
    fold_of: &[usize],
    size: f64,
    fold: usize,
    buffer: f64,
) -> Vec<bool> {
    let b = blocks(centroids, size);
    let in_fold: std::collections::BTreeSet<(i64, i64)> = b
        .iter()
        .zip(fold_of)
        .filter(|(_, &f)| f == fold)
        .map(|(k, _)| *k)
        .collect();
    let reach = (buffer / size).ceil() as i64;
    centroids
        .iter()
        .zip(&b)
        .map(|(c, &(bx, by))| {
            (-reach..=reach).any(|dx| {
                (-reach..=reach).any(|dy| {
                    let key = (bx + dx, by + dy);
                    in_fold.contains(&key) && {
                        // Distance from the point to the block's square.
                        let (x0, y0) = (key.0 as f64 * size, key.1 as f64 * size);
                        let ex = (x0 - c[0]).max(c[0] - (x0 + size)).max(0.0);
                        let ey = (y0 - c[1]).max(c[1] - (y0 + size)).max(0.0);
                        ex.hypot(ey) <= buffer
                    }
                })
            })
        })
        .collect()
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

    #[test]
    fn balance_counts_only_the_counted_buildings() {
        // Labelled buildings only in the west half: folds must still share them evenly.
        let pts: Vec<[f64; 2]> = (0..4000)
            .map(|i| [(i % 80) as f64 * 25.0, (i / 80) as f64 * 25.0])
            .collect();
        let counted: Vec<bool> = pts.iter().map(|p| p[0] < 1000.0).collect();
        let f = block_folds_counting(&pts, &counted, 250.0, 4, 3);
        let mut n = [0usize; 4];
        (0..pts.len())
            .filter(|&i| counted[i])
            .for_each(|i| n[f[i]] += 1);
        let (lo, hi) = (n.iter().min().unwrap(), n.iter().max().unwrap());
        assert!(*hi as f64 <= 1.3 * *lo as f64, "{n:?}");
    }

    #[test]
    fn buffer_marks_points_near_the_fold_only() {
        let pts = vec![[10.0, 10.0], [260.0, 10.0], [300.0, 10.0], [700.0, 10.0]];
        let fold_of = vec![0, 1, 1, 1];
        let near = near_fold(&pts, &fold_of, 250.0, 0, 40.0);
        // 260 m is 10 m from block [0, 250); 300 m is 50 m away; 700 m far.
        assert_eq!(near, vec![true, true, false, false]);
    }
}
