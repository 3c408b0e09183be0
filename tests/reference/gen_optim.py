"""Writes tests/reference/fixtures/optim.json: PyTorch golden values for the
optimizers, learning-rate schedulers and gradient clipping of src/optim/.

    /tmp/torch/bin/python tests/reference/gen_optim.py

Optimizer cases are 50-step trajectories: three parameters (shapes [2, 3],
[4], [3]) start from fixed values and receive a fixed sequence of gradients
(stored once, shared by every case; parameter 1 gets no gradient on some
steps, so per-parameter step counts differ). After every step the values of
all parameters are recorded. PyTorch runs its single-tensor implementation
(foreach=False), the one the Rust code mirrors.

Scheduler cases record every group's learning rate (and, for OneCycleLR, the
momentum or beta1) after construction and after each step, over the whole
schedule.

Clipping cases record the total norm returned by clip_grad_norm_ and the
clipped gradients.
"""
import json
import math
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = 50
SHAPES = [[2, 3], [4], [3]]


def num(v):
    """A float32 value as the shortest decimal that reads back to it."""
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return float("%.9g" % v)


def flat(t):
    return [num(v) for v in t.detach().to(torch.float32).reshape(-1).tolist()]


def gen():
    return torch.Generator().manual_seed(1234)


def initial_params():
    g = torch.Generator().manual_seed(7)
    return [torch.randn(s, generator=g) for s in SHAPES]


def grad_sequence():
    """STEPS lists of per-parameter gradients (None = no gradient)."""
    g = torch.Generator().manual_seed(99)
    seq = []
    for t in range(STEPS):
        scale = 1.0 + 0.8 * math.sin(0.7 * t)
        step = []
        for i, s in enumerate(SHAPES):
            if i == 1 and t % 7 == 3:
                step.append(None)
                torch.randn(s, generator=g)  # keep the stream aligned
            else:
                step.append(torch.randn(s, generator=g) * scale + 0.3)
        seq.append(step)
    return seq


OPTIMIZERS = {
    "SGD": torch.optim.SGD,
    "Adam": torch.optim.Adam,
    "AdamW": torch.optim.AdamW,
    "RMSprop": torch.optim.RMSprop,
}


def trajectory(kind, groups):
    """groups: list of (param indices, hyper-parameter dict)."""
    params = [p.clone().requires_grad_(True) for p in initial_params()]
    pg = [{"params": [params[i] for i in idx], **hyper} for idx, hyper in groups]
    opt = OPTIMIZERS[kind](pg, foreach=False)
    out = []
    for step in grad_sequence():
        for p, g in zip(params, step):
            p.grad = None if g is None else g.clone()
        opt.step()
        out.append([v for p in params for v in flat(p)])
    return out


def hyper_json(h):
    out = {}
    for k, v in h.items():
        if k == "betas":
            out["beta1"], out["beta2"] = v
        else:
            out[k] = float(v) if not isinstance(v, bool) else v
    return out


def opt_case(name, kind, groups):
    if isinstance(groups, dict):
        groups = [([0, 1, 2], groups)]
    return {
        "name": name,
        "kind": kind,
        "groups": [{"params": idx, "hyper": hyper_json(h)} for idx, h in groups],
        "trajectory": trajectory(kind, groups),
    }


def optimizer_cases():
    c = []
    c.append(opt_case("sgd_plain", "SGD", {"lr": 0.1}))
    c.append(opt_case("sgd_momentum", "SGD", {"lr": 0.05, "momentum": 0.9}))
    c.append(opt_case("sgd_dampening", "SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}))
    c.append(opt_case("sgd_nesterov_wd", "SGD",
                      {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}))
    c.append(opt_case("sgd_weight_decay", "SGD", {"lr": 0.1, "weight_decay": 0.1}))
    c.append(opt_case("sgd_maximize", "SGD", {"lr": 0.03, "momentum": 0.8, "maximize": True}))
    c.append(opt_case("sgd_groups", "SGD", [
        ([0, 1], {"lr": 0.1, "momentum": 0.9}),
        ([2], {"lr": 0.01, "momentum": 0.5, "weight_decay": 0.1}),
    ]))
    c.append(opt_case("adam_default", "Adam", {}))
    c.append(opt_case("adam_lr", "Adam", {"lr": 0.05}))
    c.append(opt_case("adam_weight_decay", "Adam", {"lr": 0.02, "weight_decay": 0.1}))
    c.append(opt_case("adam_amsgrad", "Adam", {"lr": 0.02, "amsgrad": True}))
    c.append(opt_case("adam_amsgrad_wd_maximize", "Adam",
                      {"lr": 0.01, "amsgrad": True, "weight_decay": 0.05, "maximize": True}))
    c.append(opt_case("adam_betas_eps", "Adam",
                      {"lr": 0.03, "betas": (0.8, 0.99), "eps": 1e-6}))
    c.append(opt_case("adam_groups", "Adam", [
        ([0], {"lr": 0.05}),
        ([1, 2], {"lr": 0.005, "betas": (0.5, 0.9), "amsgrad": True}),
    ]))
    c.append(opt_case("adamw_default", "AdamW", {}))
    c.append(opt_case("adamw_lr", "AdamW", {"lr": 0.05}))
    c.append(opt_case("adamw_amsgrad_wd", "AdamW", {"lr": 0.02, "weight_decay": 0.3, "amsgrad": True}))
    c.append(opt_case("adamw_groups", "AdamW", [
        ([0, 2], {"lr": 0.03, "weight_decay": 0.0}),
        ([1], {"lr": 0.01, "weight_decay": 0.5, "maximize": True}),
    ]))
    c.append(opt_case("rmsprop_default", "RMSprop", {}))
    c.append(opt_case("rmsprop_momentum", "RMSprop", {"lr": 0.005, "momentum": 0.9}))
    c.append(opt_case("rmsprop_centered", "RMSprop", {"lr": 0.01, "centered": True}))
    c.append(opt_case("rmsprop_centered_momentum_wd", "RMSprop",
                      {"lr": 0.003, "alpha": 0.9, "eps": 1e-6, "centered": True,
                       "momentum": 0.5, "weight_decay": 0.1}))
    c.append(opt_case("rmsprop_groups_maximize", "RMSprop", [
        ([0], {"lr": 0.02, "maximize": True}),
        ([1, 2], {"lr": 0.001, "momentum": 0.3}),
    ]))
    return c


# ------------------------------------------------------------------ schedulers

SCHEDULERS = {
    "StepLR": torch.optim.lr_scheduler.StepLR,
    "MultiStepLR": torch.optim.lr_scheduler.MultiStepLR,
    "ExponentialLR": torch.optim.lr_scheduler.ExponentialLR,
    "CosineAnnealingLR": torch.optim.lr_scheduler.CosineAnnealingLR,
    "LinearLR": torch.optim.lr_scheduler.LinearLR,
    "ConstantLR": torch.optim.lr_scheduler.ConstantLR,
    "OneCycleLR": torch.optim.lr_scheduler.OneCycleLR,
}


def make_scheduler(opt, spec):
    if spec["type"] == "SequentialLR":
        children = [make_scheduler(opt, s) for s in spec["children"]]
        return torch.optim.lr_scheduler.SequentialLR(opt, children, spec["milestones"])
    return SCHEDULERS[spec["type"]](opt, **spec["args"])


def sched_case(name, spec, steps, optimizer="SGD", lrs=(0.1, 0.02)):
    p = [torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)]
    groups = [{"params": [q], "lr": lr} for q, lr in zip(p, lrs)]
    if optimizer == "SGD":
        opt = torch.optim.SGD(groups, momentum=0.9)
    else:
        opt = torch.optim.Adam(groups)
    sched = make_scheduler(opt, spec)

    def momenta():
        if optimizer == "SGD":
            return [float(g["momentum"]) for g in opt.param_groups]
        return [float(g["betas"][0]) for g in opt.param_groups]

    lr_seq = [[float(g["lr"]) for g in opt.param_groups]]
    mom_seq = [momenta()]
    for _ in range(steps):
        opt.step()  # no gradients: a no-op that keeps PyTorch's order check quiet
        sched.step()
        lr_seq.append([float(g["lr"]) for g in opt.param_groups])
        mom_seq.append(momenta())
    return {
        "name": name,
        "optimizer": optimizer,
        "lrs": list(lrs),
        "scheduler": spec,
        "steps": steps,
        "lr": lr_seq,
        "momentum": mom_seq,
    }


def scheduler_cases():
    c = []
    c.append(sched_case("step", {"type": "StepLR", "args": {"step_size": 3, "gamma": 0.5}}, 20))
    c.append(sched_case("multistep", {"type": "MultiStepLR",
                                      "args": {"milestones": [2, 5, 5, 9], "gamma": 0.3}}, 14))
    c.append(sched_case("exponential", {"type": "ExponentialLR", "args": {"gamma": 0.9}}, 30))
    c.append(sched_case("cosine", {"type": "CosineAnnealingLR", "args": {"T_max": 10}}, 10))
    c.append(sched_case("cosine_eta_min_past_end", {"type": "CosineAnnealingLR",
                                                    "args": {"T_max": 7, "eta_min": 0.001}}, 30))
    c.append(sched_case("linear_warmup", {"type": "LinearLR",
                                          "args": {"start_factor": 0.1, "total_iters": 5}}, 10))
    c.append(sched_case("linear_decay", {"type": "LinearLR",
                                         "args": {"start_factor": 1.0, "end_factor": 0.25,
                                                  "total_iters": 8}}, 12))
    c.append(sched_case("constant", {"type": "ConstantLR",
                                     "args": {"factor": 0.5, "total_iters": 4}}, 8))
    c.append(sched_case("onecycle_cos", {"type": "OneCycleLR",
                                         "args": {"max_lr": [1.0, 0.5], "total_steps": 30}}, 30))
    c.append(sched_case("onecycle_linear_three_phase", {
        "type": "OneCycleLR",
        "args": {"max_lr": [0.4, 0.2], "total_steps": 25, "pct_start": 0.25,
                 "anneal_strategy": "linear", "three_phase": True, "div_factor": 10.0,
                 "final_div_factor": 100.0}}, 25))
    c.append(sched_case("onecycle_adam_beta1", {
        "type": "OneCycleLR",
        "args": {"max_lr": [0.01, 0.01], "total_steps": 20, "base_momentum": 0.8,
                 "max_momentum": 0.9}}, 20, optimizer="Adam", lrs=(0.001, 0.001)))
    c.append(sched_case("onecycle_no_momentum", {
        "type": "OneCycleLR",
        "args": {"max_lr": [0.3, 0.1], "total_steps": 12, "pct_start": 0.4,
                 "cycle_momentum": False}}, 12))
    c.append(sched_case("sequential_warmup_cosine", {
        "type": "SequentialLR",
        "children": [
            {"type": "LinearLR", "args": {"start_factor": 0.1, "total_iters": 5}},
            {"type": "CosineAnnealingLR", "args": {"T_max": 15, "eta_min": 0.0001}},
        ],
        "milestones": [5]}, 25))
    c.append(sched_case("sequential_three", {
        "type": "SequentialLR",
        "children": [
            {"type": "ConstantLR", "args": {"factor": 0.25, "total_iters": 10}},
            {"type": "ExponentialLR", "args": {"gamma": 0.8}},
            {"type": "StepLR", "args": {"step_size": 2, "gamma": 0.5}},
        ],
        "milestones": [3, 8]}, 14))
    return c


# ------------------------------------------------------------------ clipping

def clip_grads():
    g = torch.Generator().manual_seed(5)
    return [torch.randn(s, generator=g) * 0.7 for s in SHAPES] + [None]


def clip_norm_case(name, max_norm, norm_type, scale=1.0):
    grads = [None if x is None else x * scale for x in clip_grads()]
    params = [torch.zeros(s, requires_grad=True) for s in SHAPES] + [torch.zeros(2, requires_grad=True)]
    for p, x in zip(params, grads):
        p.grad = None if x is None else x.clone()
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type, foreach=False)
    return {
        "name": name,
        "grads": [None if x is None else flat(x) for x in grads],
        "max_norm": max_norm,
        "norm_type": norm_type if math.isfinite(norm_type) else "inf",
        "total_norm": num(total),
        "clipped": [None if p.grad is None else flat(p.grad) for p in params],
    }


def clip_value_case(name, value):
    grads = clip_grads()
    params = [torch.zeros(s, requires_grad=True) for s in SHAPES] + [torch.zeros(2, requires_grad=True)]
    for p, x in zip(params, grads):
        p.grad = None if x is None else x.clone()
    torch.nn.utils.clip_grad_value_(params, value, foreach=False)
    return {
        "name": name,
        "grads": [None if x is None else flat(x) for x in grads],
        "clip_value": value,
        "clipped": [None if p.grad is None else flat(p.grad) for p in params],
    }


def clip_cases():
    return {
        "norm": [
            clip_norm_case("l2_clipped", 1.0, 2.0),
            clip_norm_case("l2_not_clipped", 100.0, 2.0),
            clip_norm_case("l1_clipped", 2.0, 1.0),
            clip_norm_case("inf_clipped", 0.5, math.inf),
            clip_norm_case("p3_clipped", 0.75, 3.0),
            clip_norm_case("l2_large_values", 10.0, 2.0, scale=1e3),
        ],
        "value": [
            clip_value_case("value_0_5", 0.5),
            clip_value_case("value_0_1", 0.1),
            clip_value_case("value_large", 10.0),
        ],
    }


def main():
    torch.set_num_threads(1)
    out = {
        "torch": torch.__version__,
        "shapes": SHAPES,
        "initial": [flat(p) for p in initial_params()],
        "grads": [[None if g is None else flat(g) for g in step] for step in grad_sequence()],
        "optimizers": optimizer_cases(),
        "schedulers": scheduler_cases(),
        "clip": clip_cases(),
    }
    path = os.path.join(HERE, "fixtures", "optim.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"optim: {len(out['optimizers'])} trajectories, {len(out['schedulers'])} schedules, "
          f"{len(out['clip']['norm']) + len(out['clip']['value'])} clip cases -> {os.path.relpath(path)}")


if __name__ == "__main__":
    main()
