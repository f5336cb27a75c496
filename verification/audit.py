"""Monte Carlo audits of each planner method's exact update rule (docs/theory.md §6, §5, §12.6).

Two chains start from the worst-case points +C0 and -C0 (1-D; block-wise: along block 1 of R^k;
langevin: the two starts at the distance its W-infinity tracker allows, see :class:`MethodChains`)
and run the method's own update rule -- ``spec.update_rule()``, executed by
:mod:`verification.interpreter` -- with the retain-set gradient oracles of two neighbouring
worlds; the final iterates are the two output laws. Vectorised over runs, in numpy or torch
(``device``). The threshold audit (runner.run_audit, Bonferroni, Clopper–Pearson) gives a
certified LOWER bound on epsilon at delta, reported beside the certified UPPER bound of the
accountant and the exact value where the toy has one. A correct accountant satisfies
lower <= certified; a simulation with a bug (noise reused, wrong noise scale) can violate it.
The command line (``unlearn audit``) lives in the ``unlearn_cli`` package.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

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
from unlearn_theory.methods import MethodSpec, spec_class
from unlearn_theory.update_rule import UpdateRule

from . import interpreter, toys
from .runner import epsilon_lower_curve, run_audit

__all__ = [
    "MethodChains",
    "audit_method",
    "coverage_gaps",
    "EXAMPLES",
    "NO_EXACT_TOY",
    "certified_epsilon",
    "exact_epsilon",
    "exact_toy",
    "tightness_rows",
    "worst_case",
    "worst_case_rows",
    "WORST_CASE_SETTINGS",
    "WORST_CASE_CAUSES",
    "profile_curves",
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
    "langevin",
)
LOSSES = ("sign", "repel", "quadratic", "logistic", "zero", "saturating")
FAULTS = interpreter.FAULTS


def _field(b, loss, x, world, clip_gradient, anchor, curvature=1.0):
    """Retain-set gradient field g(x), per coordinate, on backend ``b``.

    After deletion both worlds train on the SAME retain set, so every loss but "saturating" is
    one oracle shared by both worlds; the worlds differ only in their start:
    - "sign": g(x) = C1 sign(x - a), the non-smooth field of docs/theory.md §12.6 item 6;
    - "repel": g(x) = -C1 sign(x - a): pushes chains that straddle a apart by the full
      2 gamma C1 allowance per step;
    - "quadratic": g = curvature (x - a) (curvature 1, or m for langevin); "logistic": g = -C1/(1 + e^{x - a}); "zero": g = 0;
    - "saturating": world 1 sees -2 C1, world 0 +2 C1 (clipped to -+C1 by the method):
      different oracles, allowed by the bounded-perturbation property §6.2(a) for gradient
      clipping only; it makes T steps an exact Gaussian shift with mu = B/(s sqrt W).
    """
    if loss == "saturating":
        s = 1.0 if world == 1 else -1.0
        return b.full(b.shape(x), -s * 2.0 * clip_gradient)
    if loss == "quadratic":
        return curvature * (x - anchor)
    if loss == "logistic":
        return -clip_gradient * b.sigmoid_neg(x - anchor)
    if loss == "sign":
        return clip_gradient * b.sign(x - anchor)
    if loss == "repel":
        return -clip_gradient * b.sign(x - anchor)
    if loss == "zero":
        return 0.0 * x
    raise InvalidParameterError("loss", loss, f"must be one of {LOSSES}")


#: Audit setup (not dynamics): methods whose world-1 model was trained on the forget set itself
#: (DP-SGD + group privacy: add/remove adjacency, both worlds start at 0 and world 1 holds the
#: forget records). The unlearning methods start the two worlds at the worst-case pair
#: +-C0 e_1 and train both on the same retain set.
_TRAINED_ON_FORGET_SET = frozenset({"dp_sgd_group"})

#: MethodChains fields used by "langevin" only (left out of ``params()`` for the others).
_LANGEVIN_FIELDS = (
    "strong_convexity",
    "smoothness",
    "lipschitz",
    "dataset_size",
    "batch_size",
    "radius",
    "training_epochs",
    "route",
)


@dataclass
class MethodChains:
    """Vectorised simulator of the two worlds of one method's exact update rule.

    The dynamics are the method's own: :meth:`spec` builds the method's spec
    (:mod:`unlearn_theory.methods`) from these fields and :mod:`verification.interpreter` runs
    ``spec.update_rule()`` on n chains, with the retain-set gradient field ``loss`` as oracle.
    What the audit sets up itself is only the two worlds:

    - the unlearning methods start from the worst-case pair x_0 = +-C0 e_1 (1-D, or block 1 of
      R^k for block-wise) and both worlds train on the same retain set;
    - dp_sgd_group (add/remove adjacency, Poisson sampling): both worlds start at 0; world 1
      holds the forget_size forget records, each in a step's batch with probability
      sample_rate and contributing -C1 (aligned, at the clip); world 0 holds none.

    For reference, the rules run are: output_perturbation x = +-C0 + N(0, s^2);
    gradient_clipping x <- rho x - gamma Pi_{C1}(g(x)) + N(0, s^2), T steps; model_clipping
    x <- Pi_{C2}(rho x - gamma g(x)) + N(0, s^2) after an optional N(0, s0^2); block-wise: phase
    i runs steps/blocks gradient-clipping steps on coordinate i only; dp_sgd_group
    x <- x - gamma(Pi_{C1} g(x) - C1 J_t + s xi), J_t ~ Bin(forget_size, sample_rate) in world 1
    (rho = 1 - gamma lambda). ``steps`` is ignored (set to 0) for output perturbation.

    langevin (fields strong_convexity m, smoothness L, lipschitz M, dataset_size n, batch_size,
    radius R, forget_size S, route; learning_rate eta, noise_std s): x <- Pi_R(x - eta
    Pi_M(g(x)) + N(0, s^2)), N = ``steps`` unlearning steps, with the retain-set field
    g = m (x - a) (``loss`` must be "quadratic": every retain point at a, so every batch of the
    cyclic partition has this gradient; ``loss`` None, the default, is "sign" for the other
    methods and "quadratic" here). The field is m-strongly convex and L-smooth (m <= L)
    and, as required here, m (R + |a|) <= M makes every per-example gradient at most M inside
    the ball, so the simulated chains meet every assumption of the bound (the clip never acts);
    ``radius`` None is set to M/m - |a|, the largest such ball (a finite R is needed).
    The audit is the comparison the certificate must dominate in the well-trained regime
    (``training_epochs`` None; a finite one is refused):

    - route "pabi": the bound holds for ANY two start laws at W-infinity distance <= Z, where Z
      is the theory's tracker ``LangevinProblem.distance(None)`` (Z = min(e/(1 - c^B), 2R),
      e = 2 eta M S/b_min); the audit starts world 0 at -Z/2 and world 1 at +Z/2 (point masses,
      the extreme pair) and runs N steps on the SAME retain oracle. On this chain the PABI
      curve with the optimal allocation is exact when c = |1 - eta m|;
    - route "lsi" (a bound between stationary laws, not a W-infinity statement): world 0
      starts from the retain chain's stationary law N(a, v_inf), world 1 from the learned
      model's stationary law N(a + Z_s, v_inf) under replacement adjacency, Z_s = 2 M S/(n m)
      (the anchors of the two data sets differ by S (d - d')/n with |m(d - d')| <= 2M),
      v_inf = s^2/(1 - (1 - eta m)^2) (the unprojected law; the ball must hold it w.o.p.).
    ``fault`` injects a bug: "reuse_noise" (one noise draw reused at every step) or
    "half_noise" (every noise std halved). Output: (n,) or (n, blocks) arrays.
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
    loss: str | None = None
    anchor: float = 0.0
    fault: str | None = None
    blocks: int = 1
    sample_rate: float = 1.0
    forget_size: int = 1
    strong_convexity: float = 1.0
    smoothness: float = 1.0
    lipschitz: float = 1.0
    dataset_size: int = 100
    batch_size: int | None = None
    radius: float | None = None
    training_epochs: int | None = None
    route: str = "pabi"

    def __post_init__(self):
        if self.method not in METHODS:
            raise InvalidParameterError("method", self.method, f"must be one of {METHODS}")
        if self.loss is None:
            self.loss = "quadratic" if self.method == "langevin" else "sign"
        if self.loss not in LOSSES:
            raise InvalidParameterError("loss", self.loss, f"must be one of {LOSSES}")
        if self.fault is not None and self.fault not in FAULTS:
            raise InvalidParameterError("fault", self.fault, f"must be None or one of {FAULTS}")
        check_positive("noise_std", self.noise_std)
        check_int("steps", self.steps, minimum=0 if self.method == "output_perturbation" else 1)
        if self.method == "output_perturbation":
            self.steps = 0  # one draw, no steps: what runs is what the params report
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
        if self.method == "langevin":
            self._check_langevin()

    def _check_langevin(self):
        from unlearn_theory.langevin import ROUTES, LangevinProblem

        if self.loss != "quadratic":
            raise InvalidParameterError(
                "loss", self.loss, "langevin is audited on the strongly convex 'quadratic' field"
            )
        if self.route not in ROUTES:
            raise InvalidParameterError("route", self.route, f"must be one of {ROUTES}")
        if self.training_epochs is not None:
            raise InvalidParameterError(
                "training_epochs",
                self.training_epochs,
                "the langevin audit covers the well-trained regime (training_epochs=None)",
            )
        if self.radius is None:
            m, a = self.strong_convexity, abs(self.anchor)
            if not (m > 0 and self.lipschitz / m > a):
                raise InvalidParameterError(
                    "radius", None, "the langevin audit needs a finite projection radius"
                )
            self.radius = self.lipschitz / m - a
        problem = LangevinProblem.create(
            learning_rate=self.learning_rate,
            strong_convexity=self.strong_convexity,
            smoothness=self.smoothness,
            lipschitz=self.lipschitz,
            dataset_size=self.dataset_size,
            batch_size=self.batch_size,
            radius=self.radius,
            forget_size=self.forget_size,
        )
        if self.strong_convexity * (self.radius + abs(self.anchor)) > self.lipschitz * (1 + 1e-12):
            raise InvalidParameterError(
                "radius",
                self.radius,
                f"need strong_convexity*(radius + |anchor|) <= lipschitz={self.lipschitz:g} "
                "(per-example gradients bounded by the Lipschitz constant in the ball)",
            )
        if self.route == "pabi" and self.steps % problem.batches_per_epoch:
            raise InvalidParameterError(
                "steps",
                self.steps,
                f"must be a multiple of batches_per_epoch={problem.batches_per_epoch}",
            )
        if self.route == "lsi" and self.strong_convexity <= 0:
            raise InvalidParameterError(
                "strong_convexity", self.strong_convexity, "route 'lsi' needs > 0"
            )
        if self.route == "lsi":
            beta = 1.0 - self.learning_rate * self.strong_convexity
            sd = self.noise_std / math.sqrt(1.0 - beta * beta)
            top = max(abs(self.anchor), abs(self.anchor + self.langevin_distance()))
            if self.radius - top < 6.0 * sd:
                raise InvalidParameterError(
                    "noise_std",
                    self.noise_std,
                    "route 'lsi' is audited from the unprojected stationary laws: the ball must "
                    "hold them (radius - |start mean| >= 6 stationary std)",
                )

    def langevin_distance(self) -> float:
        """Distance between the two worlds' starts (see the class docstring): the theory's W-inf
        tracker Z (route "pabi") or the stationary mean gap 2MS/(nm) (route "lsi")."""
        from unlearn_theory.langevin import LangevinProblem

        if self.method != "langevin":
            raise InvalidParameterError("method", self.method, "is not 'langevin'")
        if self.route == "lsi":
            return (
                2.0
                * self.lipschitz
                * self.forget_size
                / (self.dataset_size * self.strong_convexity)
            )
        return LangevinProblem.create(
            learning_rate=self.learning_rate,
            strong_convexity=self.strong_convexity,
            smoothness=self.smoothness,
            lipschitz=self.lipschitz,
            dataset_size=self.dataset_size,
            batch_size=self.batch_size,
            radius=self.radius,
            forget_size=self.forget_size,
        ).distance(None)

    def _langevin_start(self, n, backend, world):
        z = self.langevin_distance()
        if self.route == "pabi":
            return backend.full((n, 1), (0.5 if world == 1 else -0.5) * z)
        beta = 1.0 - self.learning_rate * self.strong_convexity
        sd = self.noise_std / math.sqrt(1.0 - beta * beta)
        return self.anchor + (z if world == 1 else 0.0) + sd * backend.randn(n, 1)

    # -- the method's spec and update rule ----------------------------------------------------
    def spec(self) -> MethodSpec:
        """The method's spec with these fields (the spec's own names; derived: steps_per_block
        = steps/blocks and noise_multiplier = noise_std/clip_gradient)."""
        cls = spec_class(self.method)
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["steps_per_block"] = self.steps // self.blocks
        if self.clip_gradient > 0:
            values["noise_multiplier"] = self.noise_std / self.clip_gradient
        if self.method == "model_clipping":
            # here clip_gradient is the toy field's magnitude; the simulated run has no gradient
            # clip (ModelClippingSpec.clip_gradient, optional, would add a ClipGradient op)
            values.pop("clip_gradient")
        names = cls.field_names()
        return cls.from_params(**{k: val for k, val in values.items() if k in names})

    def update_rule(self) -> UpdateRule:
        return self.spec().update_rule()

    def _oracle(self, x, world, ctx):
        """Retain-set field, each example clipped if the op says so, and this world's sampled
        forget records (-C1 each along e_1: aligned, at the clip)."""
        b = ctx.backend
        curvature = self.strong_convexity if self.method == "langevin" else 1.0
        g = _field(b, self.loss, x, world, self.clip_gradient, self.anchor, curvature)
        clip = ctx.op.per_example_clip
        if clip is not None:
            g = ctx.clip_rows(g, clip)
        if ctx.sampled_records is not None:
            if clip is None:
                raise InvalidParameterError(
                    "per_example_clip", None, "forget records sit at the per-example clip"
                )
            g = g - (clip * ctx.sampled_records) * b.unit_row(b.shape(x)[1], 0)
        return g

    def _world(self, n, backend, world):
        rule = self.update_rule()
        d = rule.blocks
        from_scratch = self.method in _TRAINED_ON_FORGET_SET
        x0 = backend.full((n, d), 0.0)
        if self.method == "langevin":
            x0 = self._langevin_start(n, backend, world)
        elif not from_scratch:
            x0[:, 0] = (1.0 if world == 1 else -1.0) * self.clip_initial
        x = interpreter.run(
            rule,
            x0,
            self._oracle,
            world=world,
            backend=backend,
            fault=self.fault,
            forget_records=self.forget_size if (from_scratch and world == 1) else 0,
        )
        return x[:, 0] if d == 1 else x

    def sample(self, n, rng):
        b = interpreter.NumpyBackend(rng)
        return self._world(n, b, 0), self._world(n, b, 1)

    def sample_torch(self, n, seed_seq, device):
        b = interpreter.TorchBackend.from_seed_sequence(seed_seq, device)
        return b.to_numpy(self._world(n, b, 0)), b.to_numpy(self._world(n, b, 1))

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
        if self.method != "langevin":
            for k in _LANGEVIN_FIELDS:
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
        elif m == "langevin":
            kw = dict(
                noise_std=self.noise_std,
                steps=self.steps,
                learning_rate=self.learning_rate,
                forget_size=self.forget_size,
                **{k: getattr(self, k) for k in _LANGEVIN_FIELDS},
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
        accountant = getattr(res, "accountant", None) or getattr(res, "source", "")
        _CERTIFY_CACHE[key] = (float(res), f"certify: {accountant} [{str(res.kind)}]")
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
    - dp_sgd_group with T = 1 and "zero": :class:`~verification.toys.GroupSubsampledGaussian`;
    - langevin: :class:`~verification.toys.LangevinQuadraticChain` (exact Gaussian laws of the
      chain without projection) when its escape probability from the ball (where projection and
      clip are inactive) is at most ``LANGEVIN_ESCAPE_TOLERANCE``; otherwise, for route "pabi"
      or "lsi", :class:`~verification.toys.ProjectedLangevinGrid` (near-exact, O(h^2), with the
      projection).
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
    if c.method == "langevin":
        return _langevin_toy(c)
    return None


#: Largest escape probability at which the unprojected Gaussian laws stand for the method's.
LANGEVIN_ESCAPE_TOLERANCE = 1e-12


def _langevin_toy(c: MethodChains):
    start = "point" if c.route == "pabi" else "stationary"
    z = c.langevin_distance()
    toy = toys.LangevinQuadraticChain(
        noise_std=c.noise_std,
        steps=c.steps,
        learning_rate=c.learning_rate,
        curvature=c.strong_convexity,
        distance=z,
        radius=c.radius,
        anchor=c.anchor,
        lipschitz=c.lipschitz,
        start=start,
    )
    if toy.escape_probability() <= LANGEVIN_ESCAPE_TOLERANCE:
        return toy
    starts = toy._starts()
    v0 = toy._var(0) if start == "stationary" else 0.0
    return toys.ProjectedLangevinGrid(
        noise_std=c.noise_std,
        steps=c.steps,
        radius=c.radius,
        learning_rate=c.learning_rate,
        targets=(c.anchor, c.anchor),
        starts=starts,
        start_var=v0,
        curvature=c.strong_convexity,
    )


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
    progress=False,
    **params,
):
    """Audit one method: simulate, bound epsilon from below (Bonferroni threshold audit,
    Clopper-Pearson, level ``confidence``), and set it beside the certified upper bound and the
    exact value (or None). ``consistent`` = lower <= certified. With ``min_epsilon`` an audit
    that does not reach it reports status "insufficient_precision" and epsilon_lower None.
    ``progress=True`` shows the draws done on stderr.
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
        progress=progress,
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
        (
            "langevin (pabi, N=10, quadratic)",
            MethodChains(
                "langevin",
                0.1,
                10,
                learning_rate=0.1,
                strong_convexity=1.0,
                smoothness=1.0,
                lipschitz=2.0,
                dataset_size=10,
                radius=2.0,
                loss="quadratic",
            ),
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


# -- worst cases: the toy that attains each certificate as closely as the assumptions allow ---

#: the block-wise worst case, shared by its per-block and joint-allocation rows
_BLOCKWISE_WORST = dict(
    clip_initial=1.0,
    clip_gradient=1.0,
    learning_rate=0.1,
    weight_decay=1.0,
    noise_std=0.5,
    steps=20,
    blocks=4,
)

#: One configuration per method (spec parameters; the certified ε is ``certify(method,
#: delta=δ, **setting)``), chosen to be representative: gradient clipping at the README's
#: CIFAR-10 setting with the noise and steps the planner gives at (ε, δ) = (1, 1e-5).
WORST_CASE_SETTINGS: dict[str, dict] = {
    "output_perturbation": dict(clip_initial=1.0, noise_std=4.0),
    "gradient_clipping": dict(
        clip_initial=1.0,
        clip_gradient=100.0,
        learning_rate=1e-3,
        weight_decay=500.0,
        noise_std=1.297377484817294,
        steps=10,
    ),
    "model_clipping": dict(clip_initial=1.0, clip_model=1.0, noise_std=1.0, steps=5),
    "blockwise_gradient_clipping": dict(_BLOCKWISE_WORST),
    "blockwise_gradient_clipping (joint)": dict(_BLOCKWISE_WORST, allocation="joint"),
    "dp_sgd_group": dict(sample_rate=0.01, noise_std=1.0, steps=1, forget_size=10),
    "langevin": dict(
        noise_std=0.1,
        steps=10,
        learning_rate=0.1,
        strong_convexity=1.0,
        smoothness=1.0,
        lipschitz=2.0,
        dataset_size=10,
        radius=2.0,
    ),
}

#: Why each method's certificate stays above its worst case (the remaining gap's cause).
WORST_CASE_CAUSES: dict[str, str] = {
    "output_perturbation": "none: one Gaussian, certified with the exact profile",
    "gradient_clipping": (
        "none: exact, the Gaussian-DP route is attained (μ = √(2a*) on the saturating chain, "
        "an exact Gaussian shift; the Rényi-only route is 1.06–1.16)"
    ),
    "model_clipping": (
        "none: the refined δ-recursion holds with equality on the moving-anchor repel chain "
        "(the residual is the recursion's upward rounding and the root search's tolerance)"
    ),
    "blockwise_gradient_clipping": (
        "the per-block argument charges every block the full start gap 2·C0 (k times the "
        "shared ball); the conversion is exact (Gaussian-DP route); allocation='joint' "
        "removes the charge"
    ),
    "blockwise_gradient_clipping (joint)": (
        "none: exact, the Gaussian-DP route is attained (the joint allocation is exact on the "
        "equal-split start)"
    ),
    "dp_sgd_group": (
        "the PLD's pessimistic discretisation only: the mixture pair is the group's exact "
        "worst case (gradients aligned at the clip); the induction route is far looser"
    ),
    "langevin": (
        "none: exact, the Gaussian-DP route is attained (the PABI allocation with optimal "
        "shifts is exact on the quadratic chain started at the W∞ distance Z)"
    ),
}


def worst_case(method: str, *, delta: float, setting: dict | None = None):
    """(toy, certified ε, certify's accountant) for ``method``'s worst case at ``delta``.

    The toy is the method's worst case within its assumptions (docs/worst_case_toys.md):
    output perturbation: the Gaussian shift 2C0/σ; gradient clipping: the saturating chain
    from +-C0 (opposite clipped gradients); model clipping: :class:`~verification.toys.
    ModelClippingWorstCase` built at the certified ε; block-wise: the saturating chain on the
    EQUAL-SPLIT start (the start gap 2C0 shared equally by the k blocks); dp_sgd_group (T = 1):
    the group mixture :class:`~verification.toys.GroupSubsampledGaussian`; langevin: the
    quadratic chain from two point masses at the W∞ distance Z of its tracker.
    """
    from unlearn_theory import certify

    delta = check_delta(delta)
    key = method
    s = dict(WORST_CASE_SETTINGS[key] if setting is None else setting)
    base = method.split(" ")[0]
    if base == "langevin":
        chains = MethodChains("langevin", loss="quadratic", **s)
        cert, source = _certify(chains, delta)
        return exact_toy(chains), cert, source
    res = certify(base, delta=delta, **s)
    cert = float(res)
    source = getattr(res, "accountant", "") or ""
    if base == "output_perturbation":
        toy = toys.GaussianShift(2 * s["clip_initial"] / s["noise_std"])
    elif base == "gradient_clipping":
        toy = toys.GradientClippingChain(
            s["noise_std"],
            s["steps"],
            s["clip_initial"],
            s["clip_gradient"],
            s["learning_rate"],
            s.get("weight_decay", 0.0),
            field="saturating",
        )
    elif base == "model_clipping":
        toy = toys.ModelClippingWorstCase(
            noise_std=s["noise_std"],
            steps=s["steps"],
            clip_initial=s["clip_initial"],
            clip_model=s["clip_model"],
            initial_noise_std=s.get("initial_noise_std"),
            target_epsilon=cert,
        )
    elif base == "blockwise_gradient_clipping":
        k = s["blocks"]
        toy = toys.BlockwiseChain(
            s["noise_std"],
            k,
            s["steps"] // k,
            s["clip_initial"],
            s["clip_gradient"],
            s["learning_rate"],
            s.get("weight_decay", 0.0),
            field="saturating",
            split=tuple([1.0] * k),
        )
    elif base == "dp_sgd_group":
        if s["steps"] != 1:
            raise InvalidParameterError("steps", s["steps"], "the exact group toy has T = 1")
        z = s.get("noise_multiplier") or s["noise_std"] / s.get("clip_gradient", 1.0)
        toy = toys.GroupSubsampledGaussian(s["sample_rate"], z, s["forget_size"])
    else:
        raise InvalidParameterError(
            "method", method, f"must be one of {tuple(WORST_CASE_SETTINGS)}"
        )
    return toy, cert, source


def worst_case_rows(*, deltas=(1e-3, 1e-5, 1e-8), methods=None):
    """Certified/exact on each method's worst case (:func:`worst_case`) at each δ: rows with
    method, δ, certified ε, exact ε (max over both directions), ratio and the gap's cause."""
    rows = []
    for m in methods or tuple(WORST_CASE_SETTINGS):
        for d in deltas:
            toy, cert, source = worst_case(m, delta=d)
            ex = float(toy.epsilon(d))
            rows.append(
                {
                    "method": m,
                    "delta": d,
                    "epsilon_certified": cert,
                    "epsilon_exact": ex,
                    "ratio": cert / ex if ex > 0 else None,
                    "certified_by": source,
                    "cause": WORST_CASE_CAUSES[m],
                }
            )
    return rows


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


# -- coverage of the registered methods -------------------------------------------------------
_GC = dict(clip_initial=1.0, clip_gradient=1.0, learning_rate=0.1, weight_decay=1.0)

#: One valid audit configuration per audited method (``MethodChains(method, **EXAMPLES[m])``),
#: chosen so that :func:`exact_toy` has a toy for it. Used by :func:`coverage_gaps`.
EXAMPLES: dict[str, dict] = {
    "gradient_clipping": dict(noise_std=1.0, steps=3, loss="saturating", **_GC),
    "model_clipping": dict(noise_std=1.0, steps=3, learning_rate=1.0, clip_gradient=2.0),
    "output_perturbation": dict(noise_std=2.0, steps=0),
    "blockwise_gradient_clipping": dict(noise_std=1.0, steps=4, blocks=2, loss="saturating", **_GC),
    "dp_sgd_group": dict(noise_std=1.0, steps=1, sample_rate=0.1, forget_size=2, loss="zero"),
    "langevin": dict(
        noise_std=0.1,
        steps=10,
        learning_rate=0.1,
        strong_convexity=1.0,
        smoothness=1.0,
        lipschitz=2.0,
        dataset_size=10,
        radius=2.0,
        loss="quadratic",
    ),
}

#: Methods that are audited but have no exact (or near-exact) toy, with the documented reason.
#: Empty: every audited method has one.
NO_EXACT_TOY: dict[str, str] = {}


def _rule_ops(rule: UpdateRule) -> int:
    return len(rule.prologue) + sum(len(p.ops) for p in rule.phases)


def coverage_gaps(method: str, *, samples: int = 2_000, delta: float = 1e-3) -> list[str]:
    """What the verification layer lacks for a registered ``method`` (empty list: complete).

    Checked, in order: the accountant is registered (``unlearn_theory.methods.get_method``);
    the spec class exists (``SPEC_CLASSES``); the audit knows the method (``METHODS``) and has
    an example configuration (``EXAMPLES``); that example's spec builds and its
    ``update_rule()`` is an UpdateRule with >= 1 op; :class:`MethodChains` runs it (finite
    output); :func:`audit_method` with ``samples`` draws per world reports consistent=True; and
    :func:`exact_toy` has a toy for the example, or the method is in ``NO_EXACT_TOY`` with a
    non-empty reason. Each gap is a sentence naming what is missing. The audit runs once, on
    few samples: this is a completeness check, not a statistical one.
    """
    from unlearn_theory.methods import SPEC_CLASSES, get_method

    gaps = []
    try:
        get_method(method)
    except InvalidParameterError:
        gaps.append(f"{method}: no accountant registered")
    if method not in SPEC_CLASSES:
        gaps.append(f"{method}: no spec class in unlearn_theory.methods.SPEC_CLASSES")
    if method not in METHODS:
        gaps.append(f"{method}: not in verification.audit.METHODS (no audit)")
    if method not in EXAMPLES:
        gaps.append(f"{method}: no audit example in verification.audit.EXAMPLES")
    if gaps:
        if method not in NO_EXACT_TOY:
            gaps.append(f"{method}: no exact toy and no entry in NO_EXACT_TOY")
        return gaps
    try:
        chains = MethodChains(method, **EXAMPLES[method])
        rule = chains.update_rule()
    except InvalidParameterError as err:
        return [f"{method}: the example's spec or update rule fails: {err}"]
    if not isinstance(rule, UpdateRule) or _rule_ops(rule) < 1:
        gaps.append(f"{method}: spec.update_rule() is not an UpdateRule with >= 1 op")
    x0, x1 = chains.sample(64, np.random.default_rng(0))
    if not (np.all(np.isfinite(x0)) and np.all(np.isfinite(x1))):
        gaps.append(f"{method}: MethodChains produced non-finite output")
    out = audit_method(method, delta=delta, samples=samples, seed=0, chains=chains)
    if not out["consistent"]:
        gaps.append(
            f"{method}: audit inconsistent (lower {out['epsilon_lower']} > certified "
            f"{out['epsilon_certified']})"
        )
    if exact_toy(chains) is None:
        reason = NO_EXACT_TOY.get(method)
        if not (isinstance(reason, str) and reason.strip()):
            gaps.append(f"{method}: no exact toy and no documented reason in NO_EXACT_TOY")
    return gaps
