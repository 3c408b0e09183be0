//! An end-to-end run of every optimizer with a schedule and clipping.

use train_station::nn::Module;
use train_station::optim::*;

use super::{fresh, loss_of, mlp};

/// A small end-to-end run: each optimizer with a warm-up + cosine schedule
/// and clipping lowers the loss of an MLP.
#[test]
fn optimizers_train_a_small_model() {
    for kind in ["SGD", "Adam", "AdamW", "RMSprop"] {
        let mut model = mlp();
        let mut opt = fresh(kind, &model.parameters());
        let warm = LinearLr::new(opt.as_mut(), 0.2, 1.0, 3);
        let cos = CosineAnnealingLr::new(opt.as_mut(), 27, 0.0);
        let mut sched = SequentialLr::new(opt.as_mut(), vec![Box::new(warm), Box::new(cos)], &[3]);
        let first = loss_of(&model).item();
        for _ in 0..30 {
            let loss = loss_of(&model);
            loss.backward();
            drop(loss);
            clip_grad_norm(&model.parameters(), 1.0, 2.0).unwrap();
            opt.step_module(&mut model).unwrap();
            model.zero_grad();
            sched.step(opt.as_mut());
        }
        let last = loss_of(&model).item();
        assert!(last < 0.5 * first, "{kind}: {first} -> {last}");
    }
}
