"""Monte Carlo audits of each planner method's exact update rule (math.md §6, §5, §12.6 item 6).

Two chains start from the worst-case points +C0 and -C0 (1-D; block-wise: along block 1 of R^k)
and run the method's update with the retain-set gradient oracles of two neighbouring worlds; the
final iterates are the two output laws. Vectorised over runs, in numpy or torch (``device``). The threshold audit (runner.run_audit, Bonferroni, Clopper–Pearson) gives a
certified LOWER bound on epsilon at delta, reported beside the certified UPPER bound of the
accountant and the exact value where the toy has one. A correct accountant satisfies
lower <= certified; a simulation with a bug (noise reused, wrong noise scale) can violate it.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass

import numpy as np

from unlearn_theory._validate import (
    check_delta,
    check_in_range,
    check_int,
    check_nonnegative,
    check_positive,
    check_sample_rate,
)
from unlearn_theory.errors import InvalidParameterError

from . import toys
from .runner import epsilon_lower_curve, run_audit

__all__ = [
    "MethodChains",
    "audit_method",
    "certified_epsilon",
    "exact_epsilon",
    "exact_toy",
    "tightness_rows",
    "profile_curves",
    "add_audit_arguments",
    "run_audit_command",
    "LOSSES",
    "METHODS",
    "FAULTS",
]

METHODS = (
    "gradient_clipping",
    "model_clipping",
    "output_perturbation",
    "blockwise_gradient_clipping",
    "dp_sgd_group",
)
LOSSES = ("sign", "repel", "quadratic", "logistic", "zero", "saturating")
FAULTS = ("reuse_noise", "half_noise")


class _NumpyOps:
    def __init__(self, rng):
        self.rng = rng

    def randn(self, *shape):
        return self.rng.standard_normal(shape)

    def binomial(self, k, q, n):
        return self.rng.binomial(k, q, n).astype(float)

    def full(self, shape, value):
        return np.full(shape, float(value))

    clip = staticmethod(np.clip)
    sign = staticmethod(np.sign)

    def sigmoid_neg(self, x):  # 1/(1 + e^x)
        return 1.0 / (1.0 + np.exp(np.clip(x, -700, 700)))

    def to_numpy(self, x):
        return x


class _TorchOps:
    def __init__(self, seed_seq, device):
        self.g, self.torch = toys._torch_generator(seed_seq, device)
        self.device = device

    def randn(self, *shape):
        t = self.torch
        return t.randn(shape, generator=self.g, device=self.device, dtype=t.float64)

    def binomial(self, k, q, n):
        t = self.torch
        cnt = t.full((n,), float(k), device=self.device, dtype=t.float64)
        prob = t.full((n,), float(q), device=self.device, dtype=t.float64)
        return t.binomial(cnt, prob, generator=self.g)

    def full(self, shape, value):
        return self.torch.full(shape, float(value), device=self.device, dtype=self.torch.float64)

    def clip(self, x, lo, hi):
        return self.torch.clamp(x, lo, hi)

    def sign(self, x):
        return self.torch.sign(x)

    def sigmoid_neg(self, x):
        return self.torch.sigmoid(-x)

    def to_numpy(self, x):
        return x.detach().to("cpu").numpy()


def _grad(ops, loss, x, world, clip_gradient, anchor):
    """Retain-set gradient oracle g(x) (1-D, per coordinate).

    After deletion both worlds train on the SAME retain set, so every loss but "saturating" is
    one oracle shared by both worlds; the worlds differ only in their start:
    - "sign": g(x) = C1 sign(x - a), the non-smooth field of math.md §12.6 item 6;
    - "repel": g(x) = -C1 sign(x - a): pushes chains that straddle a apart by the full
      2 gamma C1 allowance per step;
    - "quadratic": g = x - a; "logistic": g = -C1/(1 + e^{x - a}); "zero": g = 0;
    - "saturating": world 1 sees -2 C1, world 0 +2 C1 (clipped to -+C1 by the method):
      different oracles, allowed by the bounded-perturbation property §6.2(a) for gradient
      clipping only; it makes T steps an exact Gaussian shift with mu = B/(s sqrt W).
    """
    if loss == "saturating":
        s = 1.0 if world == 1 else -1.0
        return ops.full(x.shape, -s * 2.0 * clip_gradient)
    if loss == "quadratic":
        return x - anchor
    if loss == "logistic":
        return -clip_gradient * ops.sigmoid_neg(x - anchor)
    if loss == "sign":
        return clip_gradient * ops.sign(x - anchor)
    if loss == "repel":
        return -clip_gradient * ops.sign(x - anchor)
    if loss == "zero":
        return 0.0 * x
    raise InvalidParameterError("loss", loss, f"must be one of {LOSSES}")


@dataclass
class MethodChains:
    """Vectorised simulator of the two worlds of one method's exact update rule.

    - output_perturbation: x = +-C0 + N(0, s^2).
    - gradient_clipping: x_0 = +-C0; x <- rho x - gamma Pi_{C1}(g(x)) + N(0, s^2), T steps.
    - model_clipping: x_0 = +-C0 (+ N(0, s0^2)); x <- Pi_{C2}(rho x - gamma g(x)) + N(0, s^2).
    - blockwise_gradient_clipping: R^k, coordinate blocks, start -+C0 e_1; phase i runs
      T_b = steps/blocks gradient-clipping steps on coordinate i only, noise s on it.
    - dp_sgd_group: x_0 = 0; T steps x <- x - gamma(Pi_{C1} g(x) - C1 J_t + s xi), with
      J_t ~ Bin(forget_size, sample_rate) forget-set records (aligned, at the clip) in world 1
      and J_t = 0 in world 0 (add/remove, Poisson sampling).
    rho = 1 - gamma lambda. ``fault`` injects a bug: "reuse_noise" (one noise draw reused at
    every step) or "half_noise" (noise_std / 2). Output: (n,) or (n, blocks) arrays.
    """

    method: str
    noise_std: float
    steps: int = 1
    clip_initial: float = 1.0
    clip_gradient: float = 1.0
    clip_model: float = 1.0
    learning_rate: float = 0.1
    weight_decay: float = 0.0
    initial_noise_std: float | None = None
    loss: str = "sign"
    anchor: float = 0.0
    fault: str | None = None
    blocks: int = 1
    sample_rate: float = 1.0
    forget_size: int = 1

    def __post_init__(self):
        if self.method not in METHODS:
            raise InvalidParameterError("method", self.method, f"must be one of {METHODS}")
        if self.loss not in LOSSES:
            raise InvalidParameterError("loss", self.loss, f"must be one of {LOSSES}")
        if self.fault is not None and self.fault not in FAULTS:
            raise InvalidParameterError("fault", self.fault, f"must be None or one of {FAULTS}")
        check_positive("noise_std", self.noise_std)
        check_int("steps", self.steps, minimum=0 if self.method == "output_perturbation" else 1)
        check_positive("clip_initial", self.clip_initial)
        check_nonnegative("clip_gradient", self.clip_gradient)
        check_positive("clip_model", self.clip_model)
        check_positive("learning_rate", self.learning_rate)
        check_nonnegative("weight_decay", self.weight_decay)
        check_int("blocks", self.blocks, minimum=1)
        check_sample_rate(self.sample_rate)
        check_int("forget_size", self.forget_size, minimum=1)
        if self.initial_noise_std is not None:
            check_nonnegative("initial_noise_std", self.initial_noise_std)
        if self.loss == "saturating" and self.method in ("model_clipping", "dp_sgd_group"):
            raise InvalidParameterError(
                "loss", self.loss, f"{self.method} is audited with one shared retain oracle"
            )
        if self.method == "blockwise_gradient_clipping" and self.steps % self.blocks:
            raise InvalidParameterError("steps", self.steps, "must be a multiple of blocks")

    # -- simulation -------------------------------------------------------------------------
    def _world(self, n, ops, world):
        s = self.noise_std / 2.0 if self.fault == "half_noise" else self.noise_std
        sgn = 1.0 if world == 1 else -1.0
        gam, c1, loss, a = self.learning_rate, self.clip_gradient, self.loss, self.anchor
        rho = 1.0 - gam * self.weight_decay
        m = self.method
        if m == "output_perturbation":
            return ops.full((n,), sgn * self.clip_initial) + s * ops.randn(n)
        if m == "blockwise_gradient_clipping":
            k = self.blocks
            reused = ops.randn(n) if self.fault == "reuse_noise" else None
            cols = [ops.full((n,), sgn * self.clip_initial)]
            cols += [ops.full((n,), 0.0) for _ in range(k - 1)]
            for i in range(k):
                x = cols[i]
                for _ in range(self.steps // k):
                    g = ops.clip(_grad(ops, loss, x, world, c1, a), -c1, c1)
                    xi = reused if reused is not None else ops.randn(n)
                    x = rho * x - gam * g + s * xi
                cols[i] = x
            if isinstance(ops, _NumpyOps):
                return np.stack(cols, axis=1)
            return ops.torch.stack(cols, dim=1)
        x = ops.full((n,), 0.0 if m == "dp_sgd_group" else sgn * self.clip_initial)
        if m == "model_clipping" and self.initial_noise_std:
            x = x + self.initial_noise_std * ops.randn(n)
        reused = ops.randn(n) if self.fault == "reuse_noise" else None
        for _ in range(self.steps):
            g = _grad(ops, loss, x, world, c1, a)
            xi = reused if reused is not None else ops.randn(n)
            if m == "gradient_clipping":
                x = rho * x - gam * ops.clip(g, -c1, c1) + s * xi
            elif m == "model_clipping":
                x = ops.clip(rho * x - gam * g, -self.clip_model, self.clip_model) + s * xi
            else:  # dp_sgd_group
                j = ops.binomial(self.forget_size, self.sample_rate, n) if world == 1 else 0.0
                x = x - gam * (ops.clip(g, -c1, c1) - c1 * j + s * xi)
        return x

    def sample(self, n, rng):
        ops = _NumpyOps(rng)
        return self._world(n, ops, 0), self._world(n, ops, 1)

    def sample_torch(self, n, seed_seq, device):
        ops = _TorchOps(seed_seq, device)
        return ops.to_numpy(self._world(n, ops, 0)), ops.to_numpy(self._world(n, ops, 1))

    def score(self, x):
        """Pre-registered test statistic: the output itself (1-D); block-wise: the
        likelihood-ratio direction of the saturating chain (weights B_i), fixed a priori."""
        x = np.asarray(x, dtype=float)
        if x.ndim == 1:
            return x
        w = np.full(x.shape[1], 2 * self.learning_rate * self.clip_gradient)
        w[0] += 2 * self.clip_initial
        return x @ w

    def params(self):
        d = asdict(self)
        for k in ("loss", "fault", "method"):
            d.pop(k)
        return d

    def certify_kwargs(self):
        """Keyword arguments of ``unlearn_theory.certify(self.method, ...)``."""
        m = self.method
        kw = dict(noise_std=self.noise_std, clip_initial=self.clip_initial)
        if m in ("gradient_clipping", "blockwise_gradient_clipping"):
            kw.update(
                steps=self.steps,
                clip_gradient=self.clip_gradient,
                learning_rate=self.learning_rate,
                weight_decay=self.weight_decay,
            )
            if m == "blockwise_gradient_clipping":
                kw["blocks"] = self.blocks
        elif m == "model_clipping":
            kw.update(steps=self.steps, clip_model=self.clip_model)
            if self.initial_noise_std:
                kw["initial_noise_std"] = self.initial_noise_std
        elif m == "dp_sgd_group":
            kw = dict(
                noise_std=self.noise_std,
                steps=self.steps,
                sample_rate=self.sample_rate,
                forget_size=self.forget_size,
                clip_gradient=self.clip_gradient,
            )
        return kw


_CERTIFY_CACHE: dict = {}


def _certify(chains: MethodChains, delta):
    """``unlearn_theory.certify`` for the chains' configuration (memoised: some accountants,
    e.g. the PLD behind dp_sgd_group, take seconds per call)."""
    from unlearn_theory import certify

    kw = chains.certify_kwargs()
    key = (chains.method, float(delta), tuple(sorted(kw.items())))
    if key not in _CERTIFY_CACHE:
        res = certify(chains.method, delta=delta, **kw)
        _CERTIFY_CACHE[key] = (float(res), f"certify: {res.accountant} [{res.kind}]")
    return _CERTIFY_CACHE[key]


def certified_epsilon(chains: MethodChains, *, delta) -> float:
    """The planner's certified epsilon (UPPER or EXACT) for this configuration at ``delta``."""
    return _certify(chains, check_delta(delta))[0]


def exact_toy(chains: MethodChains):
    """The exact (or near-exact grid) toy whose law equals this simulation's, or None.

    - output_perturbation: Gaussian shift mu = 2C0/s;
    - gradient_clipping with "saturating" or "zero": :class:`~verification.toys.
      GradientClippingChain` (exact Gaussian laws);
    - model_clipping, every shared 1-D field: :class:`~verification.toys.ModelClippingGrid`;
    - blockwise "saturating"/"zero": :class:`~verification.toys.BlockwiseChain`;
    - dp_sgd_group with T = 1 and "zero": :class:`~verification.toys.GroupSubsampledGaussian`.
    Faulty simulations have no exact toy.
    """
    c = chains
    if c.fault is not None:
        return None
    if c.method == "output_perturbation":
        return toys.GaussianShift(2 * c.clip_initial / c.noise_std)
    if c.method == "gradient_clipping" and c.loss in ("saturating", "zero"):
        if c.learning_rate * c.weight_decay >= 1:
            return None
        return toys.GradientClippingChain(
            c.noise_std,
            c.steps,
            c.clip_initial,
            c.clip_gradient,
            c.learning_rate,
            c.weight_decay,
            field=c.loss,
        )
    if c.method == "model_clipping":
        return toys.ModelClippingGrid(
            noise_std=c.noise_std,
            steps=c.steps,
            clip_initial=c.clip_initial,
            clip_model=c.clip_model,
            initial_noise_std=c.initial_noise_std,
            learning_rate=c.learning_rate,
            weight_decay=c.weight_decay,
            field=c.loss,
            clip_gradient=c.clip_gradient,
            anchor=c.anchor,
            curvature=1.0,
        )
    if c.method == "blockwise_gradient_clipping" and c.loss in ("saturating", "zero"):
        if c.learning_rate * c.weight_decay >= 1:
            return None
        return toys.BlockwiseChain(
            c.noise_std,
            c.blocks,
            c.steps // c.blocks,
            c.clip_initial,
            c.clip_gradient,
            c.learning_rate,
            c.weight_decay,
            field=c.loss,
        )
    if c.method == "dp_sgd_group" and c.steps == 1 and c.loss == "zero":
        return toys.GroupSubsampledGaussian(
            c.sample_rate,
            c.noise_std / c.clip_gradient if c.clip_gradient else math.inf,
            c.forget_size,
        )
    return None


def exact_epsilon(chains: MethodChains, *, delta):
    """Exact epsilon (max over both directions) where :func:`exact_toy` exists, else None."""
    toy = exact_toy(chains)
    if toy is None:
        return None
    return float(toy.epsilon(check_delta(delta)))


def audit_method(
    method,
    *,
    delta=1e-3,
    samples=1_000_000,
    seed=0,
    confidence=0.95,
    executor=None,
    device=None,
    min_epsilon=None,
    chunk_size=1_000_000,
    **params,
):
    """Audit one method: simulate, bound epsilon from below (Bonferroni threshold audit,
    Clopper-Pearson, level ``confidence``), and set it beside the certified upper bound and the
    exact value (or None). ``consistent`` = lower <= certified. With ``min_epsilon`` an audit
    that does not reach it reports status "insufficient_precision" and epsilon_lower None.
    """
    delta = check_delta(delta)
    samples = check_int("samples", samples, minimum=1)
    confidence = check_in_range("confidence", confidence, 0.0, 1.0)
    chains = params.pop("chains", None) or MethodChains(method=method, **params)
    cert, source = _certify(chains, delta)
    res = run_audit(
        chains,
        samples=samples,
        delta=delta,
        seed=seed,
        confidence=confidence,
        executor=executor,
        device=device,
        min_epsilon=min_epsilon,
        chunk_size=chunk_size,
    )
    lower = res.epsilon_lower
    return {
        "method": chains.method,
        "loss": chains.loss,
        "fault": chains.fault,
        "delta": delta,
        "samples": samples,
        "confidence": res.confidence,
        "epsilon_lower": lower,
        "epsilon_lower_kind": "lower",
        "epsilon_certified": cert,
        "certified_source": source,
        "epsilon_exact": exact_epsilon(chains, delta=delta),
        "consistent": lower is None or lower <= cert,
        "status": res.status,
        "message": res.message,
        "params": chains.params(),
        "audit": res.to_dict(),
    }


def _tightness_cases():
    gc = dict(clip_initial=1.0, clip_gradient=1.0, learning_rate=0.1, weight_decay=1.0)
    return [
        ("output_perturbation", MethodChains("output_perturbation", 4.0, 0)),
        (
            "gradient_clipping (T=1, saturating)",
            MethodChains("gradient_clipping", 1.0, 1, loss="saturating", **gc),
        ),
        (
            "gradient_clipping (T=20, saturating)",
            MethodChains("gradient_clipping", 0.3, 20, loss="saturating", **gc),
        ),
        (
            "gradient_clipping (T=20, zero field)",
            MethodChains("gradient_clipping", 0.3, 20, loss="zero", **gc),
        ),
        (
            "model_clipping (T=5, repel)",
            MethodChains(
                "model_clipping", 1.0, 5, learning_rate=1.0, clip_gradient=2.0, loss="repel"
            ),
        ),
        (
            "model_clipping (T=5, sign)",
            MethodChains(
                "model_clipping", 1.0, 5, learning_rate=1.0, clip_gradient=2.0, loss="sign"
            ),
        ),
        (
            "blockwise (k=4, T_b=5, saturating)",
            MethodChains("blockwise_gradient_clipping", 0.5, 20, blocks=4, loss="saturating", **gc),
        ),
        (
            "dp_sgd_group (T=1, q=0.1, k=2)",
            MethodChains("dp_sgd_group", 1.0, 1, sample_rate=0.1, forget_size=2, loss="zero"),
        ),
    ]


def tightness_rows(*, delta=1e-5):
    """Certified/exact per method on canonical exact toys (both directions), for the report."""
    delta = check_delta(delta)
    rows = []
    for label, ch in _tightness_cases():
        ex = exact_epsilon(ch, delta=delta)
        ce = certified_epsilon(ch, delta=delta)
        rows.append(
            {
                "method": ch.method,
                "loss": label,
                "delta": delta,
                "epsilon_lower": None,
                "epsilon_exact": ex,
                "epsilon_certified": ce,
                "ratio": (ce / ex) if ex else None,
                "params": ch.params(),
            }
        )
    return rows


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``unlearn audit METHOD ...`` (the CLI imports this lazily)."""
    parser.add_argument("method", choices=METHODS, help="method whose update rule is simulated")
    parser.add_argument("--delta", type=float, default=1e-3)
    parser.add_argument("--noise-std", dest="noise_std", type=float, required=True)
    parser.add_argument("--steps", type=int, default=None, help="default: 1 (0 for output)")
    parser.add_argument("--clip-initial", dest="clip_initial", type=float, default=1.0)
    parser.add_argument("--clip-gradient", dest="clip_gradient", type=float, default=1.0)
    parser.add_argument("--clip-model", dest="clip_model", type=float, default=1.0)
    parser.add_argument("--learning-rate", dest="learning_rate", type=float, default=0.1)
    parser.add_argument("--weight-decay", dest="weight_decay", type=float, default=0.0)
    parser.add_argument("--initial-noise-std", dest="initial_noise_std", type=float, default=None)
    parser.add_argument("--blocks", type=int, default=1)
    parser.add_argument("--sample-rate", dest="sample_rate", type=float, default=1.0)
    parser.add_argument("--forget-size", dest="forget_size", type=int, default=1)
    parser.add_argument("--loss", choices=LOSSES, default="sign", help="retain-set gradient field")
    parser.add_argument("--anchor", type=float, default=0.0, help="a in g(x) = C1 sign(x - a)")
    parser.add_argument("--samples", type=int, default=1_000_000, help="draws per world")
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--min-epsilon",
        dest="min_epsilon",
        type=float,
        default=None,
        help="required lower bound; below it the audit reports insufficient precision",
    )
    parser.add_argument("--device", default=None, help="torch device (e.g. cpu, cuda)")
    parser.add_argument(
        "--inject-fault",
        dest="fault",
        choices=FAULTS,
        default=None,
        help="simulate a buggy loop (to see the audit catch it)",
    )
    parser.add_argument("--plot", default=None, help="write a privacy-profile PNG here")
    parser.add_argument(
        "--tightness",
        action="store_true",
        help="also print the certified/exact table of every method on its exact toy",
    )
    parser.add_argument("--json", action="store_true")


def run_audit_command(args) -> int:
    """Run ``unlearn audit METHOD ...``; exit status 0 when consistent, 1 when a violation."""
    steps = args.steps
    if steps is None:
        steps = 0 if args.method == "output_perturbation" else 1
    out = audit_method(
        args.method,
        delta=args.delta,
        samples=args.samples,
        seed=args.seed,
        confidence=args.confidence,
        min_epsilon=args.min_epsilon,
        device=args.device,
        noise_std=args.noise_std,
        steps=steps,
        clip_initial=args.clip_initial,
        clip_gradient=args.clip_gradient,
        clip_model=args.clip_model,
        learning_rate=args.learning_rate,
        weight_decay=check_nonnegative("weight_decay", args.weight_decay),
        initial_noise_std=args.initial_noise_std,
        blocks=args.blocks,
        sample_rate=args.sample_rate,
        forget_size=args.forget_size,
        loss=args.loss,
        anchor=args.anchor,
        fault=args.fault,
    )
    if args.plot:
        from .report import plot_audit

        plot_audit(out, path=args.plot)
    rows = tightness_rows(delta=args.delta) if getattr(args, "tightness", False) else None
    if args.json:
        from .report import audit_report

        print(json.dumps(audit_report([out], tightness=rows), indent=2))
    else:
        lo = "n/a" if out["epsilon_lower"] is None else f"{out['epsilon_lower']:.4f}"
        ex = "n/a" if out["epsilon_exact"] is None else f"{out['epsilon_exact']:.4f}"
        print(f"audit {out['method']} (loss={out['loss']}) at delta={out['delta']:g}")
        print(
            f"  empirical lower bound ({out['confidence']:.0%}, {out['samples']} samples/side): {lo}"
        )
        print(f"  exact epsilon:      {ex}")
        print(f"  certified epsilon:  {out['epsilon_certified']:.4f}  [{out['certified_source']}]")
        print(f"  consistent (lower <= certified): {out['consistent']}  status={out['status']}")
        if out["message"]:
            print(f"  {out['message']}")
        if rows:
            from .report import tightness_table

            print(tightness_table(rows))
    return 0 if out["consistent"] else 1


def profile_curves(out, *, deltas=None):
    """Curves for a privacy-profile plot of one :func:`audit_method` result: for each delta,
    certified epsilon (upper), exact epsilon (or None) and the jointly valid empirical lower
    bound (from the same audit's counts)."""
    from .runner import AuditResult

    if deltas is None:
        deltas = np.geomspace(max(out["delta"] / 100, 1e-12), min(out["delta"] * 100, 0.5), 9)
    deltas = np.asarray(deltas, dtype=float)
    res = AuditResult(**out["audit"])
    chains = MethodChains(
        method=out["method"], loss=out["loss"], fault=out["fault"], **out["params"]
    )
    toy = exact_toy(chains)
    return {
        "delta": deltas,
        "certified": np.array([certified_epsilon(chains, delta=d) for d in deltas]),
        "exact": None if toy is None else np.array([toy.epsilon(d) for d in deltas]),
        "lower": epsilon_lower_curve(res, deltas),
    }
