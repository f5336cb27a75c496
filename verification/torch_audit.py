r"""Monte Carlo audit of the REAL torch layer: :mod:`unlearn_torch`'s interpreter and noise.

:class:`~verification.audit.MethodChains` audits a method's update rule as run by the numpy
interpreter (:mod:`verification.interpreter`). This module audits the code that actually
unlearns: each Monte Carlo run is one run of :class:`unlearn_torch.interpreter.Interpreter` --
the class :func:`unlearn_torch.unlearn` drives -- with the spec's own update rule, the flat
float32 parameter vector (:class:`~unlearn_torch.interpreter.FlatParameters`), a counter-keyed
:class:`~unlearn_torch.noise.NoiseSource` with a fresh secret seed per run, the
:class:`~unlearn_torch.noise.NoiseGuard` observing every draw, and, for block-wise methods, a
:func:`~unlearn_torch.blocks.make_partition` partition. Nothing of the dynamics is
re-implemented here; what the audit sets up is only the two worlds (docs/theory.md §12.6):

- a tiny model: one parameter vector w ∈ ℝ^k (k = 1, or the number of blocks: one coordinate
  per block, the "rows" partition then puts coordinate i in block i), whose output on the one
  retain example X = (1, …, 1) is w itself;
- a toy retain loss whose gradient is the audit's worst-case field g(w) (:class:`FieldLoss`,
  the fields of :class:`~verification.audit.MethodChains`: "sign", "repel", "quadratic",
  "logistic", "zero", and "saturating", whose gradient ∓2C1 -- clipped to ∓C1 by the method --
  depends on the world through the retain targets y = ±1, the bounded-perturbation pair of
  docs/theory.md §6.2(a));
- the worlds' starts w_0 = ±C0 e_1 (world 1: +, world 0: −), as in MethodChains;
- langevin: ``dataset_size`` identical retain examples, loss m(w − a)²/2 each, so every
  per-example gradient is m(w − a) -- the audit's quadratic field -- and the rule's per-example
  clip at the Lipschitz constant M (vmap of grad, as for a real model) and its cyclic batches
  run as they would on real data (the clip never acts: m(R + |a|) ≤ M); the starts are those of
  MethodChains: ±Z/2 for route "pabi", the two stationary Gaussian laws for route "lsi".

**dp_sgd_group** is not run by the Interpreter (its Poisson-sampled rule is refused there) but
by :func:`unlearn_torch.baselines.train_dp_sgd` through Opacus; :class:`OpacusDPSGDSampler`
runs that function itself, once per draw, on a one-weight model (world 1 trains on the retain
records and the forget_size forget records, whose per-example gradients Opacus clips to C1;
world 0 on the retain records only -- MethodChains' add/remove semantics), with faults
injected into Opacus' noise draw (:func:`opacus_noise_fault`). Measured on the shared 2-core
CPU: about 100–250 runs/s for T = 1 (one deep copy, ``make_private`` and a certificate per
run), enough for a meaningful audit in ~10–20 s (BENCHMARKS.md, "Audits of real torch runs").

The final w of a run is one draw of the world's output law; the threshold audit of
:func:`verification.runner.run_audit` turns n draws per world into a certified LOWER bound on
epsilon (the hypothesis-testing bound ε ≥ log((1 − δ − FPR)/FNR) of docs/theory.md §12.1, with
Clopper–Pearson rates at Bonferroni level over a threshold grid pre-registered from an
independent pilot of the honest numpy law, §12.2: valid at the stated confidence), set beside
the certified UPPER bound of the accountant. A correct torch layer gives lower ≤ certified; a
faulty noise source can push the lower bound above it. Lower bounds of this kind: Kairouz, Oh &
Viswanath 2015 (arXiv 1311.0776); Jagielski, Ullman & Oprea 2020 (arXiv 2006.07709).

**Why runs are not batched.** The torch interpreter keeps the noised parameters as ONE flat
vector and every operation acts on all of it (one norm per projection and per clip, one draw
of ``xa.numel()`` values per noise op); it has no leading batch dimension. Packing n runs into
one parameter vector would make ``ProjectBall``, ``ClipGradient`` and the block restriction act
on the norm of all runs together -- a different algorithm. So the runs are a Python loop, one
interpreter per run (a few hundred runs per second per core for tens of steps on the CPU;
:func:`throughput` measures it); chunks can be spread over a process pool by the runner
(``executor``), the sampler being picklable.

**Fault injection at the noise source** (an audit device, never reachable from
:func:`unlearn_torch.unlearn`'s arguments): :func:`faulty_noise_source` gives a
:class:`~unlearn_torch.noise.NoiseSource` whose ``draw`` is corrupted the way a buggy loop
corrupts it -- "reuse_noise": every draw of the noisy phase (kind "step") returns the first
draw of that length (a key captured once), prologue draws stay fresh; "half_noise": every draw
has half the std. These are the laws of the numpy interpreter's faults
(:data:`verification.interpreter.FAULTS`), so the faulty torch and numpy laws match too. The
guard observes the draws but is not enforced here: the audit must catch the fault on its own
(with one coordinate per draw the guard's correlation test does not even apply).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import numpy as np

from unlearn_theory._validate import check_delta, check_in_range, check_int
from unlearn_theory.errors import InvalidParameterError

from . import audit as _audit
from .interpreter import FAULTS
from .runner import run_audit

__all__ = [
    "INTERPRETER_METHODS",
    "TORCH_METHODS",
    "OpacusDPSGDSampler",
    "opacus_noise_fault",
    "torch_sampler",
    "FieldLoss",
    "TorchMethodSampler",
    "audit_torch_method",
    "faulty_noise_source",
    "honest_grid",
    "throughput",
]

#: Methods whose update rule unlearn_torch's Interpreter runs (:class:`TorchMethodSampler`).
INTERPRETER_METHODS = (
    "gradient_clipping",
    "model_clipping",
    "output_perturbation",
    "blockwise_gradient_clipping",
    "langevin",
)

#: Every method this audit drives through real torch code: the interpreter's, and the
#: DP-SGD + group privacy baseline through :func:`unlearn_torch.baselines.train_dp_sgd`
#: (Opacus; :class:`OpacusDPSGDSampler`).
TORCH_METHODS = INTERPRETER_METHODS + ("dp_sgd_group",)


class FieldLoss:
    """Toy retain loss whose gradient in the model output w is the audit field g(w).

    ``out``: (m, k) model outputs (= w on the one retain example), ``y``: (m,) world signs
    (+1: world 1, −1: world 0). Per coordinate: "sign" C1|w − a| (g = C1 sign(w − a), 0 at
    w = a as numpy's sign); "repel" −C1|w − a|; "quadratic" c(w − a)²/2 (g = c(w − a),
    c = ``curvature``: 1, or langevin's strong convexity m); "logistic"
    C1 log(1 + e^{−(w − a)}) (g = −C1/(1 + e^{w − a})); "zero" 0; "saturating" −2C1·y·w
    (g = ∓2C1, world 1 pushed up). Summed over coordinates, averaged over the batch: the
    mean loss the interpreter expects. Picklable (module level).
    """

    def __init__(
        self, loss: str, clip_gradient: float, anchor: float = 0.0, curvature: float = 1.0
    ):
        if loss not in _audit.LOSSES:
            raise InvalidParameterError("loss", loss, f"must be one of {_audit.LOSSES}")
        self.loss = loss
        self.c1 = float(clip_gradient)
        self.anchor = float(anchor)
        self.curvature = float(curvature)

    def __call__(self, out, y):
        import torch.nn.functional as F

        z = out - self.anchor
        if self.loss == "saturating":
            per = -2.0 * self.c1 * y.to(out.dtype).unsqueeze(1) * out
        elif self.loss == "sign":
            per = self.c1 * z.abs()
        elif self.loss == "repel":
            per = -self.c1 * z.abs()
        elif self.loss == "quadratic":
            per = 0.5 * self.curvature * z.square()
        elif self.loss == "logistic":
            per = self.c1 * F.softplus(-z)
        else:  # zero
            per = 0.0 * out
        return per.sum(dim=1).mean()


def _point_model(k: int):
    """w ∈ ℝ^k as a module: forward(X) = X * w (the output on X = ones is w)."""
    import torch
    from torch import nn

    class Point(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(k))

        def forward(self, X):
            return X * self.w

    return Point()


def _faulty_source_class():
    from unlearn_torch.noise import NoiseSource

    class FaultyNoiseSource(NoiseSource):
        """A :class:`~unlearn_torch.noise.NoiseSource` with an injected bug (audit device).

        "reuse_noise": every "step" draw returns the first "step" draw of the same length (one
        key captured once); "half_noise": every draw has std/2. Writes into ``out`` when given,
        as the real source does (the interpreter's double buffers rely on it)."""

        def __init__(self, seed: int, fault: str):
            super().__init__(seed)
            if fault not in FAULTS:
                raise InvalidParameterError("fault", fault, f"must be one of {FAULTS}")
            self.fault = fault
            self._cache = {}

        def draw(self, n, std, *, kind="step", out=None, **kw):
            if self.fault == "half_noise":
                return super().draw(n, std / 2.0, kind=kind, out=out, **kw)
            if kind != "step":
                return super().draw(n, std, kind=kind, out=out, **kw)
            if n not in self._cache:
                self._cache[n] = super().draw(n, std, kind=kind, **kw).clone()
            cached = self._cache[n]
            if out is None:
                return cached.clone()
            return out.copy_(cached)

    return FaultyNoiseSource


def faulty_noise_source(seed: int, fault: str):
    """A :class:`~unlearn_torch.noise.NoiseSource` with ``fault`` injected (see the module
    docstring); torch is imported on first use."""
    return _faulty_source_class()(seed, fault)


@dataclass
class TorchMethodSampler:
    """Sampler (:class:`verification.runner.Sampler`) of the two worlds of ``chains``' method
    as run by the real torch layer (see the module docstring).

    ``chains``: a :class:`~verification.audit.MethodChains` (method, parameters, field
    ``loss``, ``anchor`` and ``fault``; its ``fault`` is injected at the torch noise source,
    not simulated); ``device``: where the runs execute. Output: (n,) arrays (one coordinate),
    or (n, blocks) for block-wise, exactly as ``chains.sample``; ``score`` is the chains'
    pre-registered score. Each run gets its own 63-bit noise seed from the chunk's
    SeedSequence (world 0 and 1 from two spawned children), so results do not depend on the
    executor.
    """

    chains: _audit.MethodChains
    device: str = "cpu"

    def __post_init__(self):
        if not isinstance(self.chains, _audit.MethodChains):
            raise InvalidParameterError("chains", self.chains, "must be a MethodChains")
        if self.chains.method not in INTERPRETER_METHODS:
            raise InvalidParameterError(
                "method",
                self.chains.method,
                f"is not run by unlearn_torch's Interpreter, which runs {INTERPRETER_METHODS} "
                "(dp_sgd_group: OpacusDPSGDSampler)",
            )

    # -- one world ------------------------------------------------------------------------------
    def run_world(self, world: int, seeds, device=None) -> np.ndarray:
        """Final parameter vectors (len(seeds), k) of one world, one run per noise seed: a fresh
        :class:`~unlearn_torch.interpreter.Interpreter` per run (flat float32 parameters from
        w_0 = ±C0 e_1, the spec's rule, the field loss, a keyed noise source, a guard that
        observes), prologue then every step -- the sequence :func:`unlearn_torch.unlearn`
        runs, without its certificate, checkpoints and fine-tuning."""
        import torch

        from unlearn_torch.blocks import make_partition
        from unlearn_torch.data import IndexedData
        from unlearn_torch.interpreter import FlatParameters, Interpreter
        from unlearn_torch.noise import NoiseGuard, NoiseSource
        from unlearn_torch.run import _noise_draws

        if world not in (0, 1):
            raise InvalidParameterError("world", world, "must be 0 or 1")
        ch = self.chains
        device = torch.device(self.device if device is None else device)
        rule = ch.update_rule()
        k = rule.blocks
        draws = _noise_draws(rule)
        langevin = ch.method == "langevin"
        curvature = ch.strong_convexity if langevin else 1.0
        loss_fn = FieldLoss(ch.loss, ch.clip_gradient, ch.anchor, curvature)
        # langevin: dataset_size identical retain examples (cyclic batches, per-example clip at
        # the Lipschitz constant M: each per-example gradient is m(w - a), so every batch's
        # mean gradient is the audit field); the other methods: one retain example
        rows = ch.dataset_size if langevin else 1
        X = torch.ones(rows, k, device=device)
        y = torch.full((rows,), 1.0 if world == 1 else -1.0, device=device)
        data = IndexedData("retain", (X, y), device)
        x0 = torch.zeros(k, dtype=torch.float32, device=device)
        x0[0] = (1.0 if world == 1 else -1.0) * ch.clip_initial
        starts = None
        if langevin:  # the worlds' starts of MethodChains._langevin_start
            starts = self._langevin_starts(world, seeds)
        model = _point_model(k).to(device)
        source = NoiseSource if ch.fault is None else _faulty_source_class()
        out = torch.empty(len(seeds), k, dtype=torch.float64)
        part = None
        for i, seed in enumerate(seeds):
            if starts is not None:
                x0[0] = float(starts[i])
            with torch.no_grad():
                model.w.data = x0.clone()
            flat = FlatParameters(model, ["w"], device)
            if k > 1 and part is None:
                part = make_partition(flat.layout, k, "rows")
            noise = source(int(seed)) if ch.fault is None else source(int(seed), ch.fault)
            interp = Interpreter(
                flat=flat,
                rule=rule,
                data=data,
                loss_fn=loss_fn,
                noise=noise,
                guard=NoiseGuard(draws),
                partition=part,
            )
            interp.run_prologue()
            for step in range(rule.steps):
                interp.run_step(step)
            out[i] = flat.x.detach().to("cpu", torch.float64)
        return out.numpy()

    def _langevin_starts(self, world: int, seeds) -> np.ndarray:
        """Langevin's start of each run (audit setup, MethodChains' worlds): route "pabi" the
        point masses ±Z/2 (Z the theory's W-inf tracker); route "lsi" the stationary laws
        N(a, v_inf) (world 0) and N(a + Z_s, v_inf) (world 1), the Gaussian start drawn from a
        numpy generator keyed by the run's seed (independent of the torch noise stream)."""
        ch = self.chains
        z = ch.langevin_distance()
        if ch.route == "pabi":
            return np.full(len(seeds), (0.5 if world == 1 else -0.5) * z)
        beta = 1.0 - ch.learning_rate * ch.strong_convexity
        sd = ch.noise_std / math.sqrt(1.0 - beta * beta)
        mean = ch.anchor + (z if world == 1 else 0.0)
        return np.array(
            [mean + sd * np.random.default_rng([int(s), 0x5A17]).standard_normal() for s in seeds]
        )

    def _sample(self, n, seed_seq, device):
        n = check_int("n", n, minimum=1)
        res = []
        for world, ss in zip((0, 1), seed_seq.spawn(2)):
            seeds = ss.generate_state(n, np.uint64) & np.uint64(2**63 - 1)
            x = self.run_world(world, seeds.tolist(), device)
            res.append(x[:, 0] if x.shape[1] == 1 else x)
        return res[0], res[1]

    def sample(self, n, rng: np.random.Generator):
        ss = np.random.SeedSequence(int(rng.integers(0, 2**63 - 1)))
        return self._sample(n, ss, self.device)

    def sample_torch(self, n, seed_seq, device):
        return self._sample(n, seed_seq, device)

    def score(self, x):
        return self.chains.score(x)


class _ForgetLoss:
    """Mean of −y·out over the batch: per-example gradient −y in the one weight (X = 1).
    Retain records carry y = 0 (the "zero" field), forget records y = 2C1 (clipped by Opacus
    to norm C1: aligned, at the clip). Picklable (module level)."""

    def __call__(self, out, y):
        return -(y.to(out.dtype) * out.reshape(-1)).mean()


@contextlib.contextmanager
def opacus_noise_fault(fault: str | None):
    """Inject ``fault`` into Opacus' noise source for the duration (audit device): Opacus'
    ``DPOptimizer.add_noise`` draws through ``opacus.optimizers.optimizer._generate_noise``,
    replaced here by "half_noise" (std/2) or "reuse_noise" (the first draw of each shape in the
    block is returned at every later call: the same noise at every step). None: no change."""
    if fault is None:
        yield
        return
    if fault not in FAULTS:
        raise InvalidParameterError("fault", fault, f"must be None or one of {FAULTS}")
    from opacus.optimizers import optimizer as opt_mod

    real = opt_mod._generate_noise
    cache: dict = {}

    def faulty(std, reference, generator=None, secure_mode=False):
        if fault == "half_noise":
            return real(std / 2.0, reference, generator, secure_mode)
        key = tuple(reference.shape)
        if key not in cache:
            cache[key] = real(std, reference, generator, secure_mode).clone()
        return cache[key].clone()

    opt_mod._generate_noise = faulty
    try:
        yield cache
    finally:
        opt_mod._generate_noise = real


@dataclass
class OpacusDPSGDSampler:
    """Sampler of the two worlds of a ``dp_sgd_group`` :class:`~verification.audit.MethodChains`
    as trained by the REAL baseline, :func:`unlearn_torch.baselines.train_dp_sgd` (Opacus:
    Poisson loader at the plan's rate q, flat clipping at C1, noise z·C1 on the clipped sum,
    SGD at the plan's learning rate γ, the certificate built but not written).

    Worlds (MethodChains' dp_sgd_group semantics, add/remove adjacency): a one-weight model
    w ∈ ℝ (``nn.Linear(1, 1, bias=False)`` from w = 0), every input X = 1; world 0 trains on
    ``retain_size`` retain records of zero gradient (the "zero" field, the only one audited
    here: a retain gradient that depends on w would be Poisson-sampled by Opacus but applied in
    full by the numpy law); world 1 on the same records plus the forget_size forget records,
    each with per-example gradient −2C1, which Opacus clips to −C1 (aligned, at the clip). So
    w_T = γ(C1 Σ_t J_t − z C1 Σ_t ξ_t), J_t ~ Bin(k, q) in world 1, 0 in world 0: the law of
    MethodChains (up to Opacus' clip factor C1/(2C1 + 1e-6)·2C1 ≤ C1, the safe side). The
    chains' ``fault`` is injected into Opacus' noise draw (:func:`opacus_noise_fault`).

    Cost: one ``train_dp_sgd`` call per run (deep copy, ``make_private``, certificate hashes):
    a few hundred runs per second for T = 1 on one CPU core (see BENCHMARKS.md); runs are a
    Python loop. Each run gets its own 63-bit secret seed (noise, batch and model keys derived
    from it by train_dp_sgd).
    """

    chains: _audit.MethodChains
    device: str = "cpu"
    retain_size: int = 1

    def __post_init__(self):
        if not isinstance(self.chains, _audit.MethodChains):
            raise InvalidParameterError("chains", self.chains, "must be a MethodChains")
        if self.chains.method != "dp_sgd_group":
            raise InvalidParameterError("method", self.chains.method, "must be 'dp_sgd_group'")
        if self.chains.loss != "zero":
            raise InvalidParameterError(
                "loss",
                self.chains.loss,
                "the Opacus audit runs the 'zero' retain field (Opacus samples retain records "
                "too; the numpy law applies a w-dependent retain field in full)",
            )
        self.retain_size = check_int("retain_size", self.retain_size, minimum=1)

    def run_world(self, world: int, seeds, device=None) -> np.ndarray:
        """Final weights (len(seeds),) of one world, one ``train_dp_sgd`` run per seed."""
        import logging
        import warnings

        import torch
        from torch import nn

        from unlearn_torch.baselines import train_dp_sgd

        if world not in (0, 1):
            raise InvalidParameterError("world", world, "must be 0 or 1")
        ch = self.chains
        device = torch.device(self.device if device is None else device)
        spec = ch.spec()
        k = ch.forget_size if world == 1 else 0
        X = torch.ones(self.retain_size + k, 1)
        y = torch.cat([torch.zeros(self.retain_size), torch.full((k,), 2.0 * ch.clip_gradient)])
        model = nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            model.weight.zero_()
        loss_fn = _ForgetLoss()
        out = np.empty(len(seeds))
        log = logging.getLogger("opacus.data_loader")  # "first batch is empty" (q < 1)
        level = log.level
        log.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for i, seed in enumerate(seeds):
                    with opacus_noise_fault(ch.fault):
                        run = train_dp_sgd(
                            model,
                            (X, y),
                            spec,
                            loss_fn=loss_fn,
                            seed=int(seed),
                            device=device,
                            delta=0.5,
                            allow_uncertified=True,
                        )
                    out[i] = float(run.model.weight.detach().reshape(()))
        finally:
            log.setLevel(level)
        return out

    def _sample(self, n, seed_seq, device):
        n = check_int("n", n, minimum=1)
        res = []
        for world, ss in zip((0, 1), seed_seq.spawn(2)):
            seeds = ss.generate_state(n, np.uint64) & np.uint64(2**63 - 1)
            res.append(self.run_world(world, seeds.tolist(), device))
        return res[0], res[1]

    def sample(self, n, rng: np.random.Generator):
        ss = np.random.SeedSequence(int(rng.integers(0, 2**63 - 1)))
        return self._sample(n, ss, self.device)

    def sample_torch(self, n, seed_seq, device):
        return self._sample(n, seed_seq, device)

    def score(self, x):
        return self.chains.score(x)


def torch_sampler(chains: _audit.MethodChains, device: str = "cpu"):
    """The real-code sampler of ``chains``' method: :class:`OpacusDPSGDSampler` for
    dp_sgd_group, :class:`TorchMethodSampler` for the methods unlearn_torch runs."""
    if isinstance(chains, _audit.MethodChains) and chains.method == "dp_sgd_group":
        return OpacusDPSGDSampler(chains, device=device)
    return TorchMethodSampler(chains, device=device)


def honest_grid(chains: _audit.MethodChains, *, size=32, pilot=20_000, seed=12345):
    """Pre-registered threshold grid: quantiles (0.5 %…99.5 %) of the score under both worlds
    of the HONEST numpy law of the same spec (``chains`` without its fault), from an
    independent pilot -- never from the audit's own draws, and blind to any fault (the auditor
    does not know what is wrong). Cheap: the numpy interpreter is vectorised."""
    size = check_int("size", size, minimum=1)
    honest = _audit.MethodChains(
        method=chains.method,
        loss=chains.loss,
        fault=None,
        **chains.params(),
    )
    x0, x1 = honest.sample(pilot, np.random.default_rng(np.random.SeedSequence(seed)))
    s = np.concatenate([honest.score(x0), honest.score(x1)])
    return np.unique(np.quantile(s, np.linspace(0.005, 0.995, size)))


def audit_torch_method(
    method,
    *,
    delta=1e-3,
    samples=2_000,
    seed=0,
    confidence=0.95,
    grid_size=32,
    executor=None,
    device="cpu",
    min_epsilon=None,
    chunk_size=1_000,
    progress=False,
    **params,
):
    """Audit ``method`` as run by the torch layer: the result dict of
    :func:`verification.audit.audit_method` (lower bound, certified upper bound, exact value,
    ``consistent`` = lower ≤ certified) plus ``"sampler": "unlearn_torch"``, ``"device"``,
    ``"runs_per_second"`` (both worlds' runs over wall time) and the grid size. ``params``: the
    fields of :class:`~verification.audit.MethodChains` (``fault`` injects a noise-source bug).
    The grid is :func:`honest_grid` of the same spec (pre-registered, fault-blind).
    ``progress=True`` shows the runs done on stderr.
    """
    delta = check_delta(delta)
    samples = check_int("samples", samples, minimum=1)
    confidence = check_in_range("confidence", confidence, 0.0, 1.0)
    if method == "dp_sgd_group" and params.get("loss") is None:
        params["loss"] = "zero"  # the one retain field the Opacus audit runs
    chains = _audit.MethodChains(method=method, **params)
    sampler = torch_sampler(chains, device=str(device))
    cert, source = _audit._certify(chains, delta)
    grid = honest_grid(chains, size=grid_size)
    t0 = time.perf_counter()
    res = run_audit(
        sampler,
        samples=samples,
        delta=delta,
        seed=seed,
        confidence=confidence,
        grid=grid,
        executor=executor,
        device=str(device),
        min_epsilon=min_epsilon,
        chunk_size=chunk_size,
        progress=progress,
    )
    wall = time.perf_counter() - t0
    lower = res.epsilon_lower
    return {
        "method": chains.method,
        "loss": chains.loss,
        "fault": chains.fault,
        "sampler": "unlearn_torch",
        "code_path": (
            "unlearn_torch.baselines.train_dp_sgd (opacus)"
            if chains.method == "dp_sgd_group"
            else "unlearn_torch.interpreter.Interpreter"
        ),
        "device": str(device),
        "delta": delta,
        "samples": samples,
        "confidence": res.confidence,
        "epsilon_lower": lower,
        "epsilon_lower_kind": "lower",
        "epsilon_certified": cert,
        "certified_source": source,
        "epsilon_exact": _audit.exact_epsilon(chains, delta=delta),
        "consistent": lower is None or lower <= cert,
        "status": res.status,
        "message": res.message,
        "params": chains.params(),
        "grid_size": int(len(grid)),
        "runs_per_second": 2 * samples / wall if wall > 0 else math.inf,
        "audit": res.to_dict(),
    }


def throughput(chains: _audit.MethodChains, *, runs=200, device="cpu") -> float:
    """Measured runs per second of :class:`TorchMethodSampler` (both worlds counted)."""
    runs = check_int("runs", runs, minimum=1)
    s = torch_sampler(chains, device=device)
    t0 = time.perf_counter()
    s.sample_torch(runs, np.random.SeedSequence(0), device)
    return 2 * runs / (time.perf_counter() - t0)
