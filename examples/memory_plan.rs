//! Memory plans before the first step: prints the plan of one training step
//! of the digits MLP (64-128-64-10, batch 32, Adam), then planned and
//! measured peaks for full fine-tuning, the last layer only and bias-only
//! (BitFit) of that MLP and of a 784-1024-1024-10 MLP (batch 64), and shows
//! a training run refusing to start when the plan does not fit the pool's
//! budget.
//!
//! `cargo run --release --example memory_plan`

use train_station::nn::loss::{CrossEntropyOptions, cross_entropy};
use train_station::nn::plan::{MemoryPlan, PlanLoss, plan_step};
use train_station::nn::{Linear, Module, Relu, Sequential};
use train_station::optim::{Adam, AdamConfig, Optimizer};
use train_station::tensor::pool;
use train_station::{Result, Tensor};

fn mlp(sizes: &[usize]) -> Sequential {
    let mut m = Sequential::new();
    for (i, w) in sizes.windows(2).enumerate() {
        if i > 0 {
            m.push(Relu);
        }
        m.push(Linear::new(w[0], w[1]));
    }
    m
}

/// Freezes all but the last layer (`"last"`), all but the biases
/// (`"bias"`), or nothing (`"full"`).
fn freeze(model: &mut Sequential, mode: &str) {
    let last = format!("{}.", model.len() - 1);
    for (name, p) in model.named_parameters_mut() {
        let train = match mode {
            "last" => name.starts_with(&last),
            "bias" => name.ends_with("bias"),
            _ => true,
        };
        p.set_requires_grad(train);
    }
}

fn trainable(model: &Sequential) -> Vec<Tensor> {
    let params = model.parameters().into_iter();
    params.filter(Tensor::requires_grad).collect()
}

fn step(model: &mut Sequential, opt: &mut Adam, x: &Tensor, y: &Tensor) -> Result<()> {
    model.zero_grad();
    let out = model.try_forward(x)?;
    let loss = cross_entropy(&out, y, &CrossEntropyOptions::default());
    loss.try_backward()?;
    opt.step_module(model)
}

/// The plan of one step and the pool's measured peak of a real (warm) one.
fn plan_and_measure(sizes: &[usize], batch: usize, mode: &str) -> Result<(MemoryPlan, usize)> {
    let mut model = mlp(sizes);
    freeze(&mut model, mode);
    let mut opt = Adam::new(&trainable(&model), AdamConfig::default());
    let plan = plan_step(&model, &[batch, sizes[0]], PlanLoss::CrossEntropy, &opt)?;
    let x = Tensor::randn([batch, sizes[0]], Some(1));
    let classes = sizes[sizes.len() - 1];
    let y = Tensor::from_vec((0..batch).map(|i| (i % classes) as f32).collect(), [batch])?;
    step(&mut model, &mut opt, &x, &y)?;
    pool::reset_peak();
    step(&mut model, &mut opt, &x, &y)?;
    Ok((plan, pool::stats().peak_bytes_in_use))
}

fn main() -> Result<()> {
    let (plan, _) = plan_and_measure(&[64, 128, 64, 10], 32, "full")?;
    println!("{plan}");

    println!("| model | trained | planned peak | measured peak |");
    println!("|---|---|---:|---:|");
    for (sizes, batch) in [
        (&[64, 128, 64, 10][..], 32),
        (&[784, 1024, 1024, 10][..], 64),
    ] {
        for (mode, label) in [
            ("full", "everything"),
            ("last", "last layer"),
            ("bias", "biases (BitFit)"),
        ] {
            let (plan, measured) = plan_and_measure(sizes, batch, mode)?;
            let name: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
            println!(
                "| {} MLP, batch {batch} | {label} | {} | {} |",
                name.join("-"),
                plan.peak_bytes(),
                measured
            );
            let off = plan.peak_bytes().abs_diff(measured) as f64 / measured as f64;
            assert!(
                off <= 0.10,
                "plan {} vs measured {measured}",
                plan.peak_bytes()
            );
        }
    }

    // A run refuses to start when its plan does not fit the budget.
    let model = mlp(&[784, 1024, 1024, 10]);
    let opt = Adam::new(&model.parameters(), AdamConfig::default());
    let plan = plan_step(&model, &[64, 784], PlanLoss::CrossEntropy, &opt)?;
    let budget = plan.peak_reserved_bytes() / 2;
    pool::set_budget(Some(budget));
    match plan.check_budget() {
        Ok(()) => panic!("a plan of twice the budget must not fit"),
        Err(e) => println!("\nwith a budget of {budget} bytes the run does not start: {e}"),
    }
    pool::set_budget(None);
    Ok(())
}
