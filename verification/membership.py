r"""Membership inference against real unlearning runs: loss threshold and LiRA, with an ε lower bound.

What practitioners run against an unlearned model, set beside the certificate. Two attacks score
one candidate example x against one model:

- the **loss-threshold attack** (Yeom, Giacomelli, Fredrikson & Jha 2018, arXiv 1709.01604):
  score = −CE(f(x), y), "member" when the loss is small;
- the **likelihood-ratio attack** LiRA (Carlini, Chien, Nasr, Song, Terzis & Tramèr 2022,
  arXiv 2112.03570): the logit-scaled confidence φ = log(p_y/(1 − p_y)) = z_y − logsumexp_{j≠y} z_j
  (computed from the logits z, no 0/0 at p_y → 1) is modelled per example as Gaussian under
  "in" and "out" shadow models; online score = log N(φ; μ_in, σ_in²) − log N(φ; μ_out, σ_out²),
  offline score = (φ − μ_out)/σ_out. With few shadows the variances are pooled over the
  candidates (the paper's "global variance").

**The game** (stated so that the certificate applies; docs/theory.md §1 "What is compared in
unlearning", §12.1). A fixed base set D_b (the retain set) and a pool P of forget candidates,
both from scikit-learn's digits (the demo's data, :mod:`verification.digits`). Each run draws
its candidate x uniformly from P and fresh seeds, and produces one *member* and one *non-member*
model, both scored on x:

- condition ``"unlearned"``: member = U(A(D_b ∪ {x}), D_b) -- trained on x, then unlearned
  by :func:`unlearn_torch.unlearn` with x as the forget set; non-member = U(A(D_b), D_b) -- never
  trained on x, run through the same unlearning procedure on the same retain set. This is the
  pair the certificate bounds (Koloskova et al. 2025, arXiv 2506.06985: the same noisy procedure
  from the trained and from the retrained start), and noiseless fine-tuning on D_b afterwards
  is post-processing. Conditionally on (x, D_b) the two laws are (ε, δ)-indistinguishable, so
  every test has TPR ≤ e^ε·FPR + δ (and the mirrored inequality); averaging over the candidate
  draw, which does not depend on the label, keeps both.
- condition ``"retrained"``: member = A(D_b) retrained from scratch after x's deletion (fresh
  seed), non-member = A(D_b): both never saw x, the laws are equal (ε = 0). The shadows are
  those of the "trained" condition (a retrained model is a normally trained one): the attack
  that breaks the leaky reference, run after retraining; its threshold comes from this
  condition's own calibration runs.
- condition ``"trained"`` (the leaky reference, no unlearning): member = A(D_b ∪ {x}),
  non-member = A(D_b). Nothing bounds it.

A is full-batch Adam on the MLP 64-h-10 (vectorised over runs; any A is allowed, the guarantee
does not depend on how A trained); U is the real :func:`unlearn_torch.unlearn` (noisy phase of
the plan's method, one call per model), followed by vectorised noiseless fine-tuning on D_b.
With ``canary="mislabeled"`` every pool example carries a fixed wrong label (the usual auditing
canary: a memorised wrong label is the strongest membership signal).

**The ε lower bound.** The threshold t is PRE-REGISTERED: chosen on separate calibration runs
(their own seeds and candidate draws; the shadows are shared) by maximising the same Clopper–Pearson lower bound
there, then fixed. On the evaluation runs, with one-sided Clopper–Pearson bounds at α/2 each
(a union bound), TPR_lo and FPR_hi, ε ≥ log((TPR_lo − δ)/FPR_hi) and the mirrored
log((1 − FPR_hi − δ)/(1 − TPR_lo)) (docs/theory.md §12.1–12.2): computed by
:func:`verification.estimators.threshold_epsilon_lower` with the one-threshold grid [t], valid at
confidence 1 − α. Shadow models are trained independently of every evaluation run's label, so
the attack is a fixed post-processing of the evaluated model.

The numpy part (scores, fits, AUC, threshold, bound) needs no torch; torch is imported only by
:func:`run_membership` and the functions it calls.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy import special

from unlearn_theory._validate import check_delta, check_in_range, check_int
from unlearn_theory.errors import InvalidParameterError

from .confidence import clopper_pearson_lower, clopper_pearson_upper
from .estimators import _eps_at, threshold_epsilon_lower

__all__ = [
    "CONDITIONS",
    "MembershipConfig",
    "logit_confidence",
    "loss_score",
    "lira_fit",
    "lira_score",
    "auc",
    "preregister_threshold",
    "epsilon_lower_at",
    "run_membership",
]

CONDITIONS = ("trained", "unlearned", "retrained")


# -- numpy: scores ------------------------------------------------------------------------------
def _logits_labels(logits, labels):
    z = np.asarray(logits, dtype=float)
    y = np.asarray(labels)
    if z.ndim != 2 or z.shape[1] < 2:
        raise InvalidParameterError("logits", z.shape, "must be (n, classes >= 2)")
    if y.shape != (z.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise InvalidParameterError("labels", y.shape, "must be n integer class labels")
    if np.any(y < 0) or np.any(y >= z.shape[1]):
        raise InvalidParameterError("labels", "array", f"must lie in [0, {z.shape[1]})")
    if not np.all(np.isfinite(z)):
        raise InvalidParameterError("logits", "array with NaN/inf", "must be finite")
    return z, y


def logit_confidence(logits, labels) -> np.ndarray:
    """φ = log(p_y/(1 − p_y)) = z_y − logsumexp_{j≠y} z_j, per row (Carlini et al. 2022, §4).

    Exact rewrite of the logit of the softmax probability of the true class; finite for finite
    logits (no 1 − p_y cancellation)."""
    z, y = _logits_labels(logits, labels)
    rows = np.arange(z.shape[0])
    zy = z[rows, y]
    others = z.copy()
    others[rows, y] = -np.inf
    return zy - special.logsumexp(others, axis=1)


def loss_score(logits, labels) -> np.ndarray:
    """Loss-attack score −CE = z_y − logsumexp_j z_j (higher: more likely a member)."""
    z, y = _logits_labels(logits, labels)
    return z[np.arange(z.shape[0]), y] - special.logsumexp(z, axis=1)


# -- numpy: LiRA ---------------------------------------------------------------------------------
def lira_fit(phi, included, *, variance="global", min_std=1e-3):
    """Per-candidate Gaussian fits of φ under "in" and "out" shadows.

    ``phi``: (K, P) φ of the P candidates under K shadow models; ``included``: (K, P) bool, True
    where shadow k trained on candidate p. Every candidate needs ≥ 1 in and ≥ 1 out shadow (≥ 2
    each with ``variance="per_example"``). Returns dict(mu_in, mu_out, sd_in, sd_out), arrays
    of length P; "global" pools the within-candidate variance over all candidates (the paper's
    choice with few shadows), floored at ``min_std``.
    """
    phi = np.asarray(phi, dtype=float)
    inc = np.asarray(included, dtype=bool)
    if phi.ndim != 2 or inc.shape != phi.shape:
        raise InvalidParameterError("included", inc.shape, f"must match phi's shape {phi.shape}")
    if not np.all(np.isfinite(phi)):
        raise InvalidParameterError("phi", "array with NaN/inf", "must be finite")
    if variance not in ("global", "per_example"):
        raise InvalidParameterError("variance", variance, "must be 'global' or 'per_example'")
    n_in, n_out = inc.sum(0), (~inc).sum(0)
    need = 2 if variance == "per_example" else 1
    if n_in.min() < need or n_out.min() < need:
        raise InvalidParameterError(
            "included", "mask", f"every candidate needs >= {need} in and >= {need} out shadows"
        )
    out = {}
    for name, mask, cnt in (("in", inc, n_in), ("out", ~inc, n_out)):
        mu = np.where(mask, phi, 0.0).sum(0) / cnt
        sq = np.where(mask, (phi - mu) ** 2, 0.0)
        if variance == "per_example":
            sd = np.sqrt(sq.sum(0) / (cnt - 1))
        else:
            dof = max(int(cnt.sum() - cnt.size), 1)
            sd = np.full(mu.shape, math.sqrt(sq.sum() / dof))
        out[f"mu_{name}"], out[f"sd_{name}"] = mu, np.maximum(sd, min_std)
    return out


def lira_score(phi, fit, candidates, *, online=True) -> np.ndarray:
    """LiRA score of target φ values for candidates ``candidates`` (indices into the fit).

    online: log N(φ; μ_in, σ_in²) − log N(φ; μ_out, σ_out²); offline: (φ − μ_out)/σ_out (one-
    sided, a monotone map of the paper's 1 − Φ p-value). Higher: more likely a member."""
    phi = np.asarray(phi, dtype=float)
    c = np.asarray(candidates, dtype=int)
    mo, so = fit["mu_out"][c], fit["sd_out"][c]
    if not online:
        return (phi - mo) / so
    mi, si = fit["mu_in"][c], fit["sd_in"][c]
    return -0.5 * ((phi - mi) / si) ** 2 - np.log(si) + 0.5 * ((phi - mo) / so) ** 2 + np.log(so)


def auc(member, nonmember) -> float:
    """Area under the ROC curve = P(S_member > S_non) + P(=)/2 (Mann–Whitney), an estimate."""
    a = np.sort(np.asarray(nonmember, dtype=float))
    m = np.asarray(member, dtype=float)
    if a.size == 0 or m.size == 0:
        raise InvalidParameterError("scores", "empty", "need member and non-member scores")
    lo = np.searchsorted(a, m, side="left")
    hi = np.searchsorted(a, m, side="right")
    return float((lo + 0.5 * (hi - lo)).sum() / (a.size * m.size))


# -- numpy: threshold and bound --------------------------------------------------------------
def preregister_threshold(cal_member, cal_nonmember, *, delta, alpha=0.05) -> float:
    """Threshold chosen on CALIBRATION runs only: the candidate (a distinct calibration score,
    test "member when score > t") maximising the Clopper–Pearson ε lower bound on those runs
    (:func:`verification.estimators` rates at α/2 each). Fixed before the evaluation runs are
    looked at; using it on them is the pre-registered protocol of docs/theory.md §12.2."""
    delta = check_delta(delta)
    alpha = check_in_range("alpha", alpha, 0.0, 1.0)
    s1 = np.sort(np.asarray(cal_member, dtype=float).ravel())
    s0 = np.sort(np.asarray(cal_nonmember, dtype=float).ravel())
    if s0.size == 0 or s1.size == 0 or not (np.all(np.isfinite(s0)) and np.all(np.isfinite(s1))):
        raise InvalidParameterError("cal scores", "array", "must be non-empty and finite")
    grid = np.unique(np.concatenate([s0, s1]))
    eps = _eps_at(s0, s1, grid, delta, alpha / 2)
    eps = np.where(np.isfinite(eps), eps, -np.inf)
    return float(grid[int(np.argmax(eps))])


def epsilon_lower_at(member, nonmember, *, threshold, delta, alpha=0.05) -> dict:
    """ε lower bound at one pre-registered threshold, valid at confidence 1 − α.

    value = :func:`verification.estimators.threshold_epsilon_lower` with grid [threshold]:
    max(log((TPR_lo − δ)/FPR_hi), log((1 − FPR_hi − δ)/(1 − TPR_lo))), floored at 0, rates
    one-sided Clopper–Pearson at α/2 each. Also returns the point rates and TPR_lo, FPR_hi."""
    s1 = np.asarray(member, dtype=float).ravel()
    s0 = np.asarray(nonmember, dtype=float).ravel()
    b = threshold_epsilon_lower(
        s0, s1, delta=delta, confidence=1.0 - alpha, thresholds=[threshold], protocol="bonferroni"
    )
    tp, fp = int((s1 > threshold).sum()), int((s0 > threshold).sum())
    return dict(
        epsilon_lower=float(b.value),
        confidence=1 - alpha,
        threshold=float(threshold),
        tpr=tp / s1.size,
        fpr=fp / s0.size,
        tpr_lo=float(clopper_pearson_lower(tp, s1.size, alpha=alpha / 2)),
        fpr_hi=float(clopper_pearson_upper(fp, s0.size, alpha=alpha / 2)),
    )


# -- torch: the runs -----------------------------------------------------------------------------
@dataclass
class MembershipConfig:
    """Sizes of one membership evaluation (all parameterised; :meth:`fast` for tests).

    method, epsilon, delta: the unlearning plan (the demo's problem parameters,
    :func:`verification.digits.method_params`, with ``unlearn_steps`` steps); base: |D_b|;
    pool: |P|; hidden: MLP width; train_steps, train_lr: full-batch Adam for A; finetune_steps:
    full-batch Adam after the noisy phase (0: none); shadows: K per attacked condition (each
    pool example in exactly K/2 of them); calibration_runs, evaluation_runs: runs (each one
    member and one non-member model per condition); canary: "mislabeled" or "natural";
    alpha: 1 − confidence; seed: everything derives from it.
    """

    method: str = "gradient_clipping"
    epsilon: float = 1.0
    delta: float = 1e-5
    unlearn_steps: int = 6
    base: int = 200
    pool: int = 50
    hidden: int = 32
    train_steps: int = 300
    train_lr: float = 0.01
    finetune_steps: int = 100
    shadows: int = 16
    calibration_runs: int = 100
    evaluation_runs: int = 200
    canary: str = "mislabeled"
    alpha: float = 0.05
    seed: int = 0
    conditions: tuple = CONDITIONS

    @classmethod
    def fast(cls, **kw):
        """Test sizes: tens of seconds on two busy cores."""
        base = dict(
            base=100,
            pool=20,
            hidden=16,
            train_steps=150,
            train_lr=0.02,
            finetune_steps=40,
            shadows=8,
            calibration_runs=40,
            evaluation_runs=60,
        )
        base.update(kw)
        return cls(**base)

    def validate(self):
        check_delta(self.delta)
        for name in ("base", "pool", "hidden", "train_steps", "shadows"):
            check_int(name, getattr(self, name), minimum=2)
        for name in ("calibration_runs", "evaluation_runs"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("finetune_steps", self.finetune_steps, minimum=0)
        if self.shadows % 2:
            raise InvalidParameterError("shadows", self.shadows, "must be even (K/2 in, K/2 out)")
        if self.canary not in ("mislabeled", "natural"):
            raise InvalidParameterError("canary", self.canary, "must be 'mislabeled' or 'natural'")
        bad = set(self.conditions) - set(CONDITIONS)
        if bad or not self.conditions:
            raise InvalidParameterError("conditions", self.conditions, f"subset of {CONDITIONS}")
        return self


class _Data:
    def __init__(self, cfg, torch):
        from .digits import load_digits_split as _digits

        X, y, train, _ = _digits(torch)
        X = X / 16.0
        if cfg.base + cfg.pool > len(train):
            raise InvalidParameterError("pool", cfg.pool, f"base + pool must be <= {len(train)}")
        order = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(7))]
        b, p = order[: cfg.base], order[cfg.base : cfg.base + cfg.pool]
        self.Xb, self.yb = X[b], y[b]
        self.Xp, yp = X[p], y[p].clone()
        if cfg.canary == "mislabeled":
            shift = torch.randint(1, 10, (cfg.pool,), generator=torch.Generator().manual_seed(8))
            yp = (yp + shift) % 10
        self.yp = yp
        # all examples any model may train on: D_b then the pool
        self.X = torch.cat([self.Xb, self.Xp])
        self.y = torch.cat([self.yb, self.yp])


class _Batched:
    """R independent MLPs 64-h-10 as batched tensors (vectorised training: A and fine-tuning)."""

    def __init__(self, torch, W1, b1, W2, b2):
        self.torch = torch
        self.p = [W1, b1, W2, b2]

    @classmethod
    def init(cls, torch, R, h, gen):
        def u(shape, fan_in):
            bound = 1.0 / math.sqrt(fan_in)
            return (torch.rand(shape, generator=gen) * 2 - 1) * bound

        return cls(torch, u((R, h, 64), 64), u((R, h), 64), u((R, 10, h), h), u((R, 10), h))

    def logits(self, X):
        """X: (n, 64) shared, or (R, n, 64) per model -> (R, n, 10)."""
        W1, b1, W2, b2 = self.p
        if X.dim() == 2:
            X = X.unsqueeze(0).expand(W1.shape[0], -1, -1)
        hdn = self.torch.relu(self.torch.baddbmm(b1.unsqueeze(1), X, W1.transpose(1, 2)))
        return self.torch.baddbmm(b2.unsqueeze(1), hdn, W2.transpose(1, 2))

    def fit(self, X, y, mask, steps, lr):
        """Full-batch Adam on each model's own training set (rows of ``mask``: (R, n) 0/1)."""
        torch = self.torch
        import torch.nn.functional as F

        params = [p.clone().requires_grad_(True) for p in self.p]
        self.p = params
        opt = torch.optim.Adam(params, lr=lr)
        R = mask.shape[0]
        yy = y.unsqueeze(0).expand(R, -1)
        cnt = mask.sum(1)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            ce = F.cross_entropy(self.logits(X).reshape(-1, 10), yy.reshape(-1), reduction="none")
            loss = ((ce.reshape(R, -1) * mask).sum(1) / cnt).sum()
            loss.backward()
            opt.step()
        self.p = [p.detach() for p in params]
        return self

    def module(self, r, nn):
        m = nn.Sequential(
            nn.Linear(64, self.p[0].shape[1]), nn.ReLU(), nn.Linear(self.p[0].shape[1], 10)
        )
        with self.torch.no_grad():
            m[0].weight.copy_(self.p[0][r])
            m[0].bias.copy_(self.p[1][r])
            m[2].weight.copy_(self.p[2][r])
            m[2].bias.copy_(self.p[3][r])
        return m

    @classmethod
    def stack(cls, torch, modules):
        return cls(
            torch,
            *[
                torch.stack([getattr(m[i], a).detach() for m in modules])
                for i, a in ((0, "weight"), (0, "bias"), (2, "weight"), (2, "bias"))
            ],
        )


class _Runner:
    def __init__(self, cfg: MembershipConfig, torch, seed_seq):
        import torch.nn.functional as F
        from torch import nn

        import unlearn_theory as ut

        from .digits import method_params as _method_params

        self.cfg, self.torch, self.F, self.nn = cfg, torch, F, nn
        self.data = _Data(cfg, torch)
        self.ss = seed_seq
        self.plan = ut.plan(
            cfg.method,
            epsilon=cfg.epsilon,
            delta=cfg.delta,
            **_method_params(cfg.method, cfg.unlearn_steps),
        )
        self.certified = []
        self.unlearn_calls = 0

    def _gen(self):
        (child,) = self.ss.spawn(1)
        return self.torch.Generator().manual_seed(int(child.generate_state(1, np.uint64)[0] >> 1))

    def train(self, mask):
        """A on each row's training set (mask over D_b ∪ P)."""
        cfg = self.cfg
        models = _Batched.init(self.torch, mask.shape[0], cfg.hidden, self._gen())
        return models.fit(self.data.X, self.data.y, mask, cfg.train_steps, cfg.train_lr)

    def unlearn(self, models):
        """U: the real unlearn_torch.unlearn, one call per model (noisy phase on D_b, retain),
        then vectorised noiseless fine-tuning on D_b."""
        from unlearn_torch import unlearn

        d, cfg = self.data, self.cfg
        seeds = self.ss.spawn(1)[0].generate_state(models.p[0].shape[0], np.uint64) >> np.uint64(1)
        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # LargeNoiseWarning: expected at these ε
            for r, s in enumerate(seeds.tolist()):
                run = unlearn(
                    models.module(r, self.nn),
                    (d.Xb, d.yb),
                    self.plan,
                    loss_fn=self.F.cross_entropy,
                    seed=int(s),
                    progress=False,
                )
                g = run.certificate["guarantee"]
                if not g.get("certified", False):
                    raise InvalidParameterError("plan", cfg.method, "run was not certified")
                self.certified.append(float(g["epsilon"]))
                out.append(run.model)
        self.unlearn_calls += len(out)
        res = _Batched.stack(self.torch, out)
        if cfg.finetune_steps:
            mask = self.torch.ones(len(out), cfg.base)
            res.fit(d.Xb, d.yb, mask, cfg.finetune_steps, cfg.train_lr)
        return res

    def features(self, models, cand):
        """(loss score, φ) of candidate ``cand[r]`` under model r."""
        with self.torch.no_grad():
            z = models.logits(self.data.Xp[cand].unsqueeze(1))[:, 0, :].double().numpy()
        y = self.data.yp[cand].numpy().astype(np.int64)
        return loss_score(z, y), logit_confidence(z, y)

    def phi_all(self, models):
        with self.torch.no_grad():
            z = models.logits(self.data.Xp).double().numpy()  # (K, P, 10)
        K, P, _ = z.shape
        y = np.tile(self.data.yp.numpy().astype(np.int64), K)
        return logit_confidence(z.reshape(K * P, 10), y).reshape(K, P)

    def base_mask(self, R):
        m = self.torch.zeros(R, self.cfg.base + self.cfg.pool)
        m[:, : self.cfg.base] = 1.0
        return m

    def shadows(self, rng):
        """K shadow models per attacked condition; each pool example in exactly K/2."""
        cfg = self.cfg
        K = cfg.shadows
        inc = np.zeros((K, cfg.pool), dtype=bool)
        for p in range(cfg.pool):
            inc[rng.permutation(K)[: K // 2], p] = True
        mask = self.base_mask(K)
        mask[:, cfg.base :] = self.torch.from_numpy(inc.astype(np.float32))
        trained = self.train(mask)
        fits = {"trained": lira_fit(self.phi_all(trained), inc)}
        if "unlearned" in cfg.conditions:
            fits["unlearned"] = lira_fit(self.phi_all(self.unlearn(trained)), inc)
        return fits

    def runs(self, R, rng):
        """R runs: candidate per run; per condition (member features, non-member features)."""
        cfg = self.cfg
        cand = rng.integers(0, cfg.pool, R)
        mem_mask = self.base_mask(R)
        mem_mask[np.arange(R), cfg.base + cand] = 1.0
        member = self.train(mem_mask)
        non = self.train(self.base_mask(R))
        out = {"candidates": cand}
        if "trained" in cfg.conditions:
            out["trained"] = (self.features(member, cand), self.features(non, cand))
        if "unlearned" in cfg.conditions:
            non_u = self.unlearn(non)
            out["unlearned"] = (
                self.features(self.unlearn(member), cand),
                self.features(non_u, cand),
            )
        if "retrained" in cfg.conditions:
            # the practitioner's comparison: x deleted by retraining from scratch (fresh seed)
            # against a model that never saw x -- both A(D_b), equal laws
            re = self.train(self.base_mask(R))
            out["retrained"] = (self.features(re, cand), self.features(non, cand))
        return out


def _scores(feats, fit, cand, attack, online):
    (loss_m, phi_m), (loss_n, phi_n) = feats
    if attack == "loss":
        return loss_m, loss_n
    return lira_score(phi_m, fit, cand, online=online), lira_score(phi_n, fit, cand, online=online)


def run_membership(cfg: MembershipConfig | None = None, *, online=True, keep_scores=False) -> dict:
    """Run the membership game of the module docstring and bound ε from each attack.

    Returns dict(config, plan noise_std/steps, certified_epsilon (the runs' certificates; all
    equal), results: {condition: {attack: {auc, threshold, tpr, fpr, tpr_lo, fpr_hi,
    epsilon_lower, ratio = epsilon_lower/certified}}}, seconds, runs_per_second (target runs,
    calibration and evaluation, each producing a member and a non-member model per condition,
    plus shadows, over wall time), unlearn_calls). Thresholds per attack and condition come
    from the calibration runs only (of the same condition); "retrained" uses the "trained"
    shadows. ``keep_scores``: each result also holds its raw scores (numpy arrays).
    """
    import torch

    cfg = (cfg or MembershipConfig()).validate()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    try:
        ss = np.random.SeedSequence(cfg.seed)
        s_run, s_shadow, s_cal, s_eval = ss.spawn(4)
        runner = _Runner(cfg, torch, s_run)
        fits = runner.shadows(np.random.default_rng(s_shadow))
        cal = runner.runs(cfg.calibration_runs, np.random.default_rng(s_cal))
        ev = runner.runs(cfg.evaluation_runs, np.random.default_rng(s_eval))
    finally:
        torch.set_num_threads(threads)
    wall = time.perf_counter() - t0
    certs = runner.certified
    cert = max(certs) if certs else None
    if certs and max(certs) - min(certs) > 1e-9 * max(1.0, abs(cert)):
        raise InvalidParameterError("certified", (min(certs), max(certs)), "runs must agree")
    results = {}
    for cond in cfg.conditions:
        fit = fits["trained" if cond == "retrained" else cond]
        results[cond] = {}
        for attack in ("loss", "lira"):
            cm, cn = _scores(cal[cond], fit, cal["candidates"], attack, online)
            t = preregister_threshold(cm, cn, delta=cfg.delta, alpha=cfg.alpha)
            em, en = _scores(ev[cond], fit, ev["candidates"], attack, online)
            r = epsilon_lower_at(em, en, threshold=t, delta=cfg.delta, alpha=cfg.alpha)
            r["auc"] = auc(em, en)
            r["ratio"] = None if cert is None else r["epsilon_lower"] / cert
            if keep_scores:
                r["scores"] = dict(
                    calibration_member=cm,
                    calibration_nonmember=cn,
                    evaluation_member=em,
                    evaluation_nonmember=en,
                )
            results[cond][attack] = r
    runs = cfg.calibration_runs + cfg.evaluation_runs
    return dict(
        config=asdict(cfg),
        noise_std=float(runner.plan.noise_std),
        steps=int(runner.plan.steps),
        certified_epsilon=cert,
        results=results,
        seconds=wall,
        runs_per_second=runs / wall if wall > 0 else math.inf,
        unlearn_calls=runner.unlearn_calls,
        lira="online" if online else "offline",
    )
