//! The order a comparison's runs are made in. Cell by cell, a cell's
//! repeats run back to back, under whatever the host was doing then; a
//! slow hour or a warm cache lands on one cell. Interleaved, each pass
//! makes one run of every cell in a seeded random order, so a cell's
//! repeats are spread over the whole campaign and no two runs of one cell
//! are ever consecutive (when there are two cells or more).

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// One run to make: the cell's index and the repeat's number (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    /// Index of the cell (workload × policy) in the caller's list.
    pub cell: usize,
    /// Which repeat of the cell, from 1.
    pub repeat: u32,
}

/// Every cell's repeats one after the other (the order of old campaigns).
pub fn cell_by_cell(cells: usize, repeats: u32) -> Vec<Job> {
    (0..cells)
        .flat_map(|cell| (1..=repeats).map(move |repeat| Job { cell, repeat }))
        .collect()
}

/// `repeats` passes, each one run of every cell in an order drawn from
/// `seed`; a pass never starts with the cell the previous one ended with.
pub fn interleaved(cells: usize, repeats: u32, seed: u64) -> Vec<Job> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut jobs = Vec::with_capacity(cells * repeats as usize);
    let mut order: Vec<usize> = (0..cells).collect();
    for repeat in 1..=repeats {
        order.shuffle(&mut rng);
        if cells > 1 && jobs.last().is_some_and(|last: &Job| last.cell == order[0]) {
            // Swap the repeated cell out of the first place.
            let swap_with = 1 + (rng_index(&mut rng, cells - 1));
            order.swap(0, swap_with);
        }
        jobs.extend(order.iter().map(|&cell| Job { cell, repeat }));
    }
    jobs
}

fn rng_index(rng: &mut ChaCha8Rng, below: usize) -> usize {
    use rand::RngExt;
    rng.random_range(0..below)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_once_and_no_cell_twice_in_a_row() {
        for seed in 0..50 {
            let jobs = interleaved(7, 5, seed);
            assert_eq!(jobs.len(), 35);
            let mut sorted = jobs.clone();
            sorted.sort_by_key(|j| (j.cell, j.repeat));
            assert_eq!(sorted, cell_by_cell(7, 5), "seed {seed}");
            for pair in jobs.windows(2) {
                assert_ne!(pair[0].cell, pair[1].cell, "seed {seed}: {jobs:?}");
            }
        }
    }

    #[test]
    fn a_seed_gives_one_order_and_seeds_differ() {
        assert_eq!(interleaved(9, 3, 42), interleaved(9, 3, 42));
        assert_ne!(interleaved(9, 3, 42), interleaved(9, 3, 43));
        // Repeats go pass by pass: repeat i of every cell before i + 1.
        let jobs = interleaved(9, 3, 42);
        assert!(jobs.windows(2).all(|p| p[0].repeat <= p[1].repeat));
    }

    #[test]
    fn one_cell_is_its_repeats() {
        assert_eq!(interleaved(1, 3, 7), cell_by_cell(1, 3));
        assert!(interleaved(0, 3, 7).is_empty());
    }
}
