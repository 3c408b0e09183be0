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
