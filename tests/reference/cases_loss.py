"""Loss functions (torch.nn.functional): every loss x reduction x option,
values and gradients w.r.t. the input, the target (where PyTorch defines one)
and the class weight of probability-target cross-entropy (see gen.py).

Case names encode the call for tests/nn_loss/: `<loss>:<key=value,...>`.
Inputs are [input, target] followed by `weight` when the key `w` is present
and `pos_weight` when `pw` is present. Keys: red (mean|sum|none), beta,
delta, ig (ignore_index; absent = PyTorch's default -100, `none` = no
ignore), ls (label smoothing), xt / tt (the input / target is passed
transposed: `.t()` of the stored leaf)."""
import torch
import torch.nn.functional as F

from common import case, rand, randn

REDS = ("mean", "sum", "none")


def fmt(d):
    return ",".join(f"{k}={v}" for k, v in d.items())


def name(loss, **kw):
    return f"{loss}:{fmt(kw)}"


def regression(c):
    x = randn([3, 4], 1)
    t = randn([3, 4], 2)
    t[0, 0] = x[0, 0]  # equal elements: l1's gradient is 0 there
    t[1, 1] = x[1, 1] + 0.25  # inside the quadratic zone of smooth_l1 / huber
    big = randn([2, 3], 3) * 1e4
    bigt = randn([2, 3], 4) * 1e4
    xt = randn([4, 3], 5)
    tt = randn([3, 4], 6)
    fns = {
        "mse_loss": (lambda a, b, r: F.mse_loss(a, b, reduction=r), [{}]),
        "l1_loss": (lambda a, b, r: F.l1_loss(a, b, reduction=r), [{}]),
        "smooth_l1_loss": (None, [{"beta": 1.0}, {"beta": 0.5}, {"beta": 0.0}, {"beta": 3.0}]),
        "huber_loss": (None, [{"delta": 1.0}, {"delta": 0.5}, {"delta": 3.0}]),
    }

    def call(loss, opts, r):
        if loss == "smooth_l1_loss":
            return lambda a, b: F.smooth_l1_loss(a, b, reduction=r, beta=opts["beta"])
        if loss == "huber_loss":
            return lambda a, b: F.huber_loss(a, b, reduction=r, delta=opts["delta"])
        f = fns[loss][0]
        return lambda a, b: f(a, b, r)

    for loss, (_, optss) in fns.items():
        for opts in optss:
            for r in REDS:
                c.append(case(name(loss, red=r, **opts), [x, t], call(loss, opts, r)))
            # Views, large values, 0-D, empty.
            f = call(loss, opts, "mean")
            c.append(case(name(loss, red="mean", xt=1, **opts), [xt, tt],
                          lambda a, b, f=f: f(a.t(), b)))
            c.append(case(name(loss, red="sum", big=1, **opts), [big, bigt],
                          call(loss, opts, "sum")))
            c.append(case(name(loss, red="mean", scalar=1, **opts),
                          [torch.tensor(0.7), torch.tensor(-0.4)], f))
            c.append(case(name(loss, red="mean", empty=1, **opts),
                          [torch.zeros(0, 3), torch.zeros(0, 3)], f))
            c.append(case(name(loss, red="sum", empty=1, **opts),
                          [torch.zeros(0, 3), torch.zeros(0, 3)], call(loss, opts, "sum")))


def binary(c):
    p = rand([3, 4], 11, 0.05, 0.95)
    t = rand([3, 4], 12)
    w4 = rand([4], 13, 0.5, 2.0)
    w34 = rand([3, 4], 14, 0.5, 2.0)
    w31 = rand([3, 1], 15, 0.5, 2.0)
    for r in REDS:
        c.append(case(name("bce", red=r), [p, t],
                      lambda a, b, r=r: F.binary_cross_entropy(a, b, reduction=r)))
        for key, w in (("4", w4), ("34", w34), ("31", w31)):
            c.append(case(name("bce", red=r, w=key), [p, t, w],
                          lambda a, b, w, r=r: F.binary_cross_entropy(a, b, weight=w, reduction=r),
                          diff=[True, True, False]))
    # Probabilities 0 and 1: logs clamped at -100, gradients through max(., 1e-12).
    edge = torch.tensor([[0.0, 1.0, 0.0, 1.0, 1e-30, 0.5]])
    edget = torch.tensor([[1.0, 0.0, 0.0, 1.0, 1.0, 0.3]])
    c.append(case(name("bce", red="none", edge=1), [edge, edget],
                  lambda a, b: F.binary_cross_entropy(a, b, reduction="none")))
    c.append(case(name("bce", red="mean", xt=1), [p.t().contiguous(), t],
                  lambda a, b: F.binary_cross_entropy(a.t(), b)))

    x = randn([3, 4], 21) * 3.0
    pw4 = rand([4], 22, 0.5, 3.0)
    pw34 = rand([3, 4], 23, 0.5, 3.0)
    for r in REDS:
        for wk, w in ((None, None), ("4", w4), ("31", w31)):
            for pk, pw in ((None, None), ("4", pw4), ("34", pw34)):
                kw = {"red": r}
                inputs = [x, t]
                if wk:
                    kw["w"] = wk
                    inputs.append(w)
                if pk:
                    kw["pw"] = pk
                    inputs.append(pw)

                def f(a, b, *rest, r=r, wk=wk, pk=pk):
                    rest = list(rest)
                    w = rest.pop(0) if wk else None
                    pw = rest.pop(0) if pk else None
                    return F.binary_cross_entropy_with_logits(a, b, weight=w, pos_weight=pw, reduction=r)

                c.append(case(name("bce_logits", **kw), inputs, f,
                              diff=[True, True] + [False] * (len(inputs) - 2)))
    # Large logits: stable log-sigmoid, finite gradients.
    big = torch.tensor([[1e4, -1e4, 50.0, -50.0, 100.0, -100.0, 0.0, 20.0]])
    bigt = torch.tensor([[0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.5, 0.3]])
    pw8 = rand([8], 24, 0.5, 3.0)
    c.append(case(name("bce_logits", red="none", big=1), [big, bigt],
                  lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="none")))
    c.append(case(name("bce_logits", red="none", big=1, pw="8"), [big, bigt, pw8],
                  lambda a, b, pw: F.binary_cross_entropy_with_logits(a, b, pos_weight=pw, reduction="none"),
                  diff=[True, True, False]))
    # pos_weight [C] broadcast over the last dim of a 3-D input.
    x3 = randn([2, 3, 4], 25)
    t3 = rand([2, 3, 4], 26)
    c.append(case(name("bce_logits", red="mean", pw="4", set="3d"), [x3, t3, pw4],
                  lambda a, b, pw: F.binary_cross_entropy_with_logits(a, b, pos_weight=pw),
                  diff=[True, True, False]))
    c.append(case(name("bce_logits", red="mean", xt=1, pw="4"), [x.t().contiguous(), t, pw4],
                  lambda a, b, pw: F.binary_cross_entropy_with_logits(a.t(), b, pos_weight=pw),
                  diff=[True, True, False]))


def ce_kwargs(opts):
    kw = {"reduction": opts["red"]}
    if "ig" in opts:
        kw["ignore_index"] = opts["ig"]
    if "ls" in opts:
        kw["label_smoothing"] = opts["ls"]
    return kw


def add_class_case(c, loss, opts, x, t, w, indices, xt=False, tt=False, tag=None):
    """cross_entropy / nll_loss with the options in `opts`."""
    f = F.nll_loss if loss == "nll" else F.cross_entropy
    kw = ce_kwargs(opts)
    inputs = [x, t]
    key = dict(opts)
    if tag:
        key["set"] = tag
    if xt:
        key["xt"] = 1
    if tt:
        key["tt"] = 1
    if w is not None:
        key["w"] = 1
        inputs.append(w)

    def fn(a, b, *rest):
        a = a.t() if xt else a
        b = b.t() if tt else b
        if indices:
            b = b.long()
        return f(a, b, weight=rest[0] if rest else None, **kw)

    if indices:
        diff = [True, False] + [False] * (len(inputs) - 2)
    else:
        diff = [True] * len(inputs)
    c.append(case(name(loss, **key), inputs, fn, diff=diff))


def classes(c):
    x = randn([6, 5], 31) * 2.0
    y = torch.tensor([0.0, 2.0, 4.0, 2.0, 1.0, 3.0])
    w = rand([5], 32, 0.2, 2.0)
    # Every combination of weight, ignore_index, smoothing and reduction.
    for r in REDS:
        for use_w in (False, True):
            for ig in (None, 2, "none"):
                for ls in (None, 0.1):
                    opts = {"red": r}
                    if ig is not None:
                        opts["ig"] = ig
                    if ls is not None:
                        opts["ls"] = ls
                    o = dict(opts)
                    if o.get("ig") == "none":
                        o.pop("ig")  # PyTorch has no "no ignore"; -100 never matches here
                    wt = w if use_w else None
                    # The name keeps ig=none so the Rust side passes None.
                    c.append(_named(c, "ce", opts, o, x, y, wt, True))
                    if ls is None:
                        lp = torch.log_softmax(x, 1)
                        c.append(_named(c, "nll", opts, o, lp, y, wt, True))
    # Default ignore_index -100 present in the target.
    y100 = torch.tensor([0.0, -100.0, 4.0, 2.0, -100.0, 3.0])
    for r in REDS:
        add_class_case(c, "ce", {"red": r, "ls": 0.2}, x, y100, w, True, tag="y100")
        add_class_case(c, "nll", {"red": r}, x, y100, w, True, tag="y100")
    # Every target ignored: Mean is 0/0 = NaN.
    yall = torch.tensor([-100.0] * 6)
    add_class_case(c, "ce", {"red": "mean"}, x, yall, None, True, tag="allignored")
    add_class_case(c, "nll", {"red": "mean"}, x, yall, None, True, tag="allignored")
    # Full smoothing.
    add_class_case(c, "ce", {"red": "mean", "ls": 1.0}, x, y, w, True)
    # [N, C, d1, d2] logits with [N, d1, d2] targets.
    xk = randn([2, 3, 4, 2], 33)
    yk = torch.randint(0, 3, [2, 4, 2], generator=torch.Generator().manual_seed(34)).float()
    yk[0, 1, 0] = 1.0
    yk[1, 2, 1] = 1.0
    w3 = rand([3], 35, 0.2, 2.0)
    for r in REDS:
        add_class_case(c, "ce", {"red": r, "ig": 1, "ls": 0.15}, xk, yk, w3, True, tag="4d")
        add_class_case(c, "ce", {"red": r}, xk, yk, None, True, tag="4d")
        add_class_case(c, "nll", {"red": r, "ig": 1}, xk, yk, w3, True, tag="4d")
    # [N, C, d] (3-D).
    x3 = randn([2, 4, 3], 36)
    y3 = torch.tensor([[0.0, 3.0, 1.0], [2.0, 2.0, 0.0]])
    add_class_case(c, "ce", {"red": "mean", "ls": 0.1}, x3, y3, None, True, tag="3d")
    add_class_case(c, "nll", {"red": "none"}, x3, y3, None, True, tag="3d")
    # Unbatched [C] logits with a 0-D target.
    xc = randn([5], 37)
    for r in REDS:
        add_class_case(c, "ce", {"red": r, "ls": 0.1}, xc, torch.tensor(3.0), w, True, tag="unbatched")
        add_class_case(c, "nll", {"red": r}, xc, torch.tensor(3.0), w, True, tag="unbatched")
    # Transposed logits (a view).
    add_class_case(c, "ce", {"red": "mean", "ig": 2, "ls": 0.1}, x.t().contiguous(), y, w, True, xt=True)
    add_class_case(c, "nll", {"red": "sum"}, x.t().contiguous(), y, None, True, xt=True)
    # Large logits: no overflow.
    xb = randn([3, 4], 38) * 1e4
    yb = torch.tensor([1.0, 0.0, 3.0])
    for r in ("mean", "none"):
        add_class_case(c, "ce", {"red": r}, xb, yb, None, True, tag="big")
        add_class_case(c, "ce", {"red": r, "ls": 0.1}, xb, yb, w[:4].clone(), True, tag="big")
    # Empty batch.
    add_class_case(c, "ce", {"red": "mean"}, torch.zeros(0, 5), torch.zeros(0), None, True, tag="empty")
    add_class_case(c, "ce", {"red": "sum"}, torch.zeros(0, 5), torch.zeros(0), None, True, tag="empty")

    # Class-probability targets.
    q = torch.softmax(randn([6, 5], 41), 1)
    for r in REDS:
        for use_w in (False, True):
            for ls in (None, 0.1):
                opts = {"red": r}
                if ls is not None:
                    opts["ls"] = ls
                add_class_case(c, "cep", opts, x, q, w if use_w else None, False)
    # A negative ignore_index is allowed (and ignored) with probabilities.
    add_class_case(c, "cep", {"red": "mean", "ig": -5}, x, q, None, False)
    qk = torch.softmax(randn([2, 3, 4, 2], 42), 1)
    for r in REDS:
        add_class_case(c, "cep", {"red": r, "ls": 0.2}, xk, qk, w3, False, tag="4d")
    add_class_case(c, "cep", {"red": "sum"}, xc, torch.softmax(randn([5], 43), 0), w, False, tag="unbatched")
    add_class_case(c, "cep", {"red": "mean", "ls": 0.1}, x.t().contiguous(), q.t().contiguous(), w,
                   False, xt=True, tt=True)
    add_class_case(c, "cep", {"red": "none"}, xb, torch.softmax(randn([3, 4], 44), 1), None, False, tag="big")


def _named(c, loss, key_opts, call_opts, x, t, w, indices):
    """Like add_class_case but with separate name and call options."""
    tmp = []
    add_class_case(tmp, loss, call_opts, x, t, w, indices)
    got = tmp[0]
    key = dict(key_opts)
    if w is not None:
        key["w"] = 1
    got["name"] = name(loss, **key)
    return got


def others(c):
    lp = torch.log_softmax(randn([3, 4], 51), 1)
    q = torch.softmax(randn([3, 4], 52), 1)
    q[1, 2] = 0.0  # xlogy(0, 0) = 0; the target's gradient is NaN there
    lq = torch.log_softmax(randn([3, 4], 53), 1)
    for r in REDS:
        c.append(case(name("kl_div", red=r, logt=0), [lp, q],
                      lambda a, b, r=r: F.kl_div(a, b, reduction=r)))
        c.append(case(name("kl_div", red=r, logt=1), [lp, lq],
                      lambda a, b, r=r: F.kl_div(a, b, reduction=r, log_target=True)))
    c.append(case(name("kl_div", red="sum", logt=0, xt=1), [lp.t().contiguous(), q],
                  lambda a, b: F.kl_div(a.t(), b, reduction="sum")))
    x = randn([3, 4], 54) * 3.0
    y = torch.where(rand([3, 4], 55) > 0.5, 1.0, -1.0)
    big = torch.tensor([[30.0, -30.0, 80.0, -80.0, 0.0]])
    bigy = torch.tensor([[1.0, 1.0, -1.0, 1.0, -1.0]])
    for r in REDS:
        c.append(case(name("soft_margin", red=r), [x, y],
                      lambda a, b, r=r: F.soft_margin_loss(a, b, reduction=r), diff=[True, False]))
    c.append(case(name("soft_margin", red="none", big=1), [big, bigy],
                  lambda a, b: F.soft_margin_loss(a, b, reduction="none"), diff=[True, False]))
    c.append(case(name("soft_margin", red="mean", xt=1), [x.t().contiguous(), y],
                  lambda a, b: F.soft_margin_loss(a.t(), b), diff=[True, False]))


def cases():
    c = []
    regression(c)
    binary(c)
    others(c)
    # F.cross_entropy is named "ce" (index targets) / "cep" (probabilities).
    classes(c)
    return c
