//! Datasets, loaders and splits.

use std::collections::BTreeSet;

use train_station::Tensor;
use train_station::data::{DataLoader, TensorDataset, train_test_split};

fn dataset(n: usize) -> TensorDataset {
    let x = Tensor::from_fn([n, 3], |i| (i[0] * 10 + i[1]) as f32);
    let y = Tensor::from_fn([n], |i| i[0] as f32);
    TensorDataset::new(vec![x, y]).unwrap()
}

#[test]
fn batches_cover_every_sample_once_and_rows_stay_paired() {
    let ds = dataset(10);
    let mut loader = DataLoader::new(&ds, 4).shuffle(7);
    assert_eq!(loader.num_batches(), 3);
    let mut seen = BTreeSet::new();
    let sizes: Vec<usize> = loader
        .epoch()
        .map(|b| {
            for r in 0..b[1].numel() {
                let label = b[1].get(&[r]);
                assert_eq!(
                    b[0].get(&[r, 2]),
                    label * 10.0 + 2.0,
                    "features follow their label"
                );
                assert!(seen.insert(label as usize));
            }
            b[0].dims()[0]
        })
        .collect();
    assert_eq!(sizes, vec![4, 4, 2]);
    assert_eq!(seen.len(), 10);
}

#[test]
fn shuffling_is_seeded_and_differs_per_epoch() {
    let ds = dataset(50);
    let order = |seed| -> Vec<Vec<f32>> {
        let mut l = DataLoader::new(&ds, 50).shuffle(seed);
        (0..2)
            .map(|_| l.epoch().next().unwrap()[1].to_vec())
            .collect()
    };
    let a = order(1);
    assert_eq!(a, order(1), "same seed, same epochs");
    assert_ne!(a[0], a[1], "epochs reshuffle");
    assert_ne!(a, order(2));
    let plain: Vec<f32> = DataLoader::new(&ds, 50).epoch().next().unwrap()[1].to_vec();
    assert_eq!(plain, (0..50).map(|i| i as f32).collect::<Vec<_>>());
}

#[test]
fn drop_last_and_resume_state() {
    let ds = dataset(10);
    let mut l = DataLoader::new(&ds, 4).drop_last(true).shuffle(3);
    assert_eq!(l.num_batches(), 2);
    assert_eq!(l.epoch().count(), 2);
    let state = l.rng_state().unwrap();
    let next: Vec<Vec<f32>> = l.epoch().map(|b| b[1].to_vec()).collect();
    let mut resumed = DataLoader::new(&ds, 4).drop_last(true);
    resumed.set_rng_state(state);
    let again: Vec<Vec<f32>> = resumed.epoch().map(|b| b[1].to_vec()).collect();
    assert_eq!(next, again);
}

#[test]
fn splits_partition_the_samples() {
    let x = Tensor::from_fn([20, 2], |i| i[0] as f32);
    let y = Tensor::from_fn([20], |i| i[0] as f32);
    let (train, test) = train_test_split(vec![x, y], 0.25, 9).unwrap();
    assert_eq!((train.len(), test.len()), (15, 5));
    let mut all: Vec<f32> = train.tensors()[1].to_vec();
    all.extend(test.tensors()[1].to_vec());
    all.sort_by(f32::total_cmp);
    assert_eq!(all, (0..20).map(|i| i as f32).collect::<Vec<_>>());
    assert!(TensorDataset::new(vec![Tensor::zeros([3]), Tensor::zeros([4])]).is_err());
    assert!(dataset(5).select(&[5]).is_err());
    assert!(dataset(5).split(1.5, 0).is_err());
}

mod distributed_sampler {
    use train_station::Tensor;
    use train_station::data::{DistributedSampler, TensorDataset};

    fn shards(len: usize, world: usize, epoch: u64, drop_last: bool) -> Vec<Vec<usize>> {
        (0..world)
            .map(|r| {
                let mut s = DistributedSampler::new(len, world, r)
                    .unwrap()
                    .seed(11)
                    .drop_last(drop_last);
                s.set_epoch(epoch);
                s.indices()
            })
            .collect()
    }

    #[test]
    fn every_sample_once_per_epoch_when_the_count_divides() {
        for world in [1, 2, 3, 4, 6] {
            for epoch in 0..3 {
                let parts = shards(12, world, epoch, false);
                let mut all: Vec<usize> = parts.concat();
                assert!(parts.iter().all(|p| p.len() == 12 / world));
                all.sort_unstable();
                assert_eq!(all, (0..12).collect::<Vec<_>>(), "world {world}");
            }
        }
    }

    #[test]
    fn epochs_reshuffle_and_are_the_same_on_every_run() {
        let a = shards(50, 2, 0, false);
        assert_eq!(a, shards(50, 2, 0, false));
        assert_ne!(a, shards(50, 2, 1, false));
        let unshuffled = DistributedSampler::new(5, 2, 1).unwrap().shuffle(false);
        assert_eq!(unshuffled.indices(), vec![1, 3, 0]);
    }

    #[test]
    fn uneven_counts_pad_by_wrapping_or_drop() {
        // 10 samples on 4 ranks: 3 each, the first 2 of the permutation twice.
        let parts = shards(10, 4, 2, false);
        assert!(parts.iter().all(|p| p.len() == 3));
        let mut perm = DistributedSampler::new(10, 1, 0).unwrap().seed(11);
        perm.set_epoch(2);
        let perm = perm.indices();
        let mut all = parts.concat();
        all.sort_unstable();
        let mut want: Vec<usize> = (0..10).chain(perm[..2].iter().copied()).collect();
        want.sort_unstable();
        assert_eq!(all, want);
        // Rank 0 takes positions 0, 4, 8 of the padded order.
        assert_eq!(parts[0], vec![perm[0], perm[4], perm[8]]);
        assert_eq!(parts[2], vec![perm[2], perm[6], perm[0]]);

        // Padding longer than the data repeats it: 2 samples on 5 ranks.
        let tiny: Vec<usize> = shards(2, 5, 0, false).concat();
        assert_eq!(tiny.len(), 5);
        assert!(tiny.iter().all(|&i| i < 2));

        // drop_last: 2 each, 8 distinct samples, 2 skipped.
        let parts = shards(10, 4, 2, true);
        assert!(parts.iter().all(|p| p.len() == 2));
        let mut all = parts.concat();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 8);
    }

    #[test]
    fn global_batches_do_not_depend_on_the_rank_count() {
        // 48 samples, global batch 12: the set of samples of step t is the
        // same on 1, 2, 3, 4 and 6 ranks (local batch 12 / world).
        let step_sets = |world: usize| -> Vec<Vec<usize>> {
            let parts = shards(48, world, 5, false);
            let b = 12 / world;
            (0..4)
                .map(|t| {
                    let mut s: Vec<usize> = parts
                        .iter()
                        .flat_map(|p| p[t * b..(t + 1) * b].to_vec())
                        .collect();
                    s.sort_unstable();
                    s
                })
                .collect()
        };
        let one = step_sets(1);
        for world in [2, 3, 4, 6] {
            assert_eq!(step_sets(world), one, "re-sharded for {world} ranks");
        }
    }

    #[test]
    fn batches_follow_the_shard_and_bad_arguments_are_errors() {
        let x = Tensor::from_fn([7], |i| i[0] as f32);
        let ds = TensorDataset::new(vec![x]).unwrap();
        let s = DistributedSampler::new(7, 2, 1).unwrap().seed(3);
        let got: Vec<f32> = s.batches(&ds, 3).flat_map(|b| b[0].to_vec()).collect();
        let want: Vec<f32> = s.indices().iter().map(|&i| i as f32).collect();
        assert_eq!(got, want);
        assert_eq!(s.num_samples(), 4);
        assert_eq!(s.total_size(), 8);
        assert!(DistributedSampler::new(7, 0, 0).is_err());
        assert!(DistributedSampler::new(7, 2, 2).is_err());
    }
}
