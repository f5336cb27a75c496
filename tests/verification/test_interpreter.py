"""The update-rule interpreter: same laws as the hand-written simulations it replaced, fresh
noise at every step, ball projection, per-row clipping, blocks, forget records, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from unlearn_theory.errors import InvalidParameterError
from unlearn_theory.methods import (
    SPEC_CLASSES,
    BlockwiseGradientClippingSpec,
    LangevinSpec,
)
from unlearn_theory.update_rule import (
    AddNoise,
    ClipGradient,
    Gradient,
    GradientNoise,
    GradientStep,
    Phase,
    ProjectBall,
    UpdateRule,
    WeightDecay,
)
from verification import audit, interpreter


# -- the hand-written simulation that MethodChains ran before the interpreter (reference) --------
def _legacy_field(loss, x, world, c1, a):
    if loss == "saturating":
        return np.full(x.shape, -(1.0 if world == 1 else -1.0) * 2.0 * c1)
    if loss == "quadratic":
        return x - a
    if loss == "logistic":
        return -c1 / (1.0 + np.exp(np.clip(x - a, -700, 700)))
    if loss == "sign":
        return c1 * np.sign(x - a)
    if loss == "repel":
        return -c1 * np.sign(x - a)
    return 0.0 * x


def _legacy_world(ch, n, rng, world):
    s = ch.noise_std / 2.0 if ch.fault == "half_noise" else ch.noise_std
    sgn = 1.0 if world == 1 else -1.0
    gam, c1, loss, a = ch.learning_rate, ch.clip_gradient, ch.loss, ch.anchor
    rho = 1.0 - gam * ch.weight_decay
    m = ch.method
    if m == "output_perturbation":
        return np.full(n, sgn * ch.clip_initial) + s * rng.standard_normal(n)
    if m == "blockwise_gradient_clipping":
        k = ch.blocks
        reused = rng.standard_normal(n) if ch.fault == "reuse_noise" else None
        cols = [np.full(n, sgn * ch.clip_initial)] + [np.zeros(n) for _ in range(k - 1)]
        for i in range(k):
            x = cols[i]
            for _ in range(ch.steps // k):
                g = np.clip(_legacy_field(loss, x, world, c1, a), -c1, c1)
                xi = reused if reused is not None else rng.standard_normal(n)
                x = rho * x - gam * g + s * xi
            cols[i] = x
        return np.stack(cols, axis=1)
    x = np.full(n, 0.0 if m == "dp_sgd_group" else sgn * ch.clip_initial)
    if m == "model_clipping" and ch.initial_noise_std:
        x = x + ch.initial_noise_std * rng.standard_normal(n)
    reused = rng.standard_normal(n) if ch.fault == "reuse_noise" else None
    for _ in range(ch.steps):
        g = _legacy_field(loss, x, world, c1, a)
        xi = reused if reused is not None else rng.standard_normal(n)
        if m == "gradient_clipping":
            x = rho * x - gam * np.clip(g, -c1, c1) + s * xi
        elif m == "model_clipping":
            x = np.clip(rho * x - gam * g, -ch.clip_model, ch.clip_model) + s * xi
        else:
            j = rng.binomial(ch.forget_size, ch.sample_rate, n) if world == 1 else 0.0
            x = x - gam * (np.clip(g, -c1, c1) - c1 * j + s * xi)
    return x


def _legacy_sample(ch, n, rng):
    return _legacy_world(ch, n, rng, 0), _legacy_world(ch, n, rng, 1)


_SAME_DRAW_ORDER = [
    ("output_perturbation", dict(noise_std=1.5, steps=0), ("sign",)),
    (
        "gradient_clipping",
        dict(noise_std=0.7, steps=5, weight_decay=1.0),
        ("sign", "repel", "quadratic", "logistic", "zero", "saturating"),
    ),
    (
        "model_clipping",
        dict(noise_std=0.8, steps=4, learning_rate=1.0, clip_gradient=2.0),
        ("sign", "repel", "quadratic", "logistic", "zero"),
    ),
    (
        "model_clipping",
        dict(noise_std=0.8, steps=4, learning_rate=0.5, initial_noise_std=0.3, clip_model=2.0),
        ("quadratic",),
    ),
    (
        "blockwise_gradient_clipping",
        dict(noise_std=0.9, steps=6, blocks=3, weight_decay=1.0),
        ("sign", "logistic", "saturating", "zero"),
    ),
]
_FAULTS = (None, "half_noise", "reuse_noise")


@pytest.mark.parametrize(
    "method,kw,loss,fault",
    [
        (m, kw, loss, fault)
        for m, kw, losses in _SAME_DRAW_ORDER
        for loss in losses
        for fault in _FAULTS
        if not (fault == "reuse_noise" and m == "blockwise_gradient_clipping")
        and not (fault == "half_noise" and kw.get("initial_noise_std"))
    ],
)
def test_interpreter_reproduces_the_hand_written_chains(method, kw, loss, fault):
    """Same seed, same draw order: bit-identical arrays.

    Two faulty cases are not the old law on purpose: block-wise "reuse_noise" (tested below)
    and "half_noise" with an initial noise, which the interpreter halves too (every noise op).
    """
    ch = audit.MethodChains(method, loss=loss, fault=fault, **kw)
    new = ch.sample(20_000, np.random.default_rng(11))
    old = _legacy_sample(ch, 20_000, np.random.default_rng(11))
    for a, b in zip(new, old):
        assert a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_blockwise_reuse_noise_is_one_reused_draw():
    """Block-wise "reuse_noise": every step of every block adds the same draw (law of the old
    simulation: x_i = rho^Tb x_i0 - ... + s xi sum rho^t, the same xi on every coordinate)."""
    ch = audit.MethodChains(
        "blockwise_gradient_clipping", 0.9, 6, blocks=3, loss="zero", fault="reuse_noise"
    )
    x0, x1 = ch.sample(50_000, np.random.default_rng(3))
    # zero field, no decay: x_i = start_i + 2 s xi on every block, with the same xi
    np.testing.assert_allclose(x1[:, 1], x1[:, 2], atol=1e-12)
    np.testing.assert_allclose(x1[:, 0] - ch.clip_initial, x1[:, 1], atol=1e-12)
    assert np.var(x1[:, 1]) == pytest.approx((2 * 0.9) ** 2, rel=0.03)


@pytest.mark.parametrize("loss", ["zero", "sign"])
def test_dp_sgd_group_same_law_as_the_hand_written_chain(loss):
    """World 0 draws only the noise (same order: identical arrays); world 1 draws the forget
    records before the noise, so its law is compared (two-sample KS, exact mean/variance)."""
    kw = dict(noise_std=1.0, steps=3, sample_rate=0.3, forget_size=2, loss=loss)
    ch = audit.MethodChains("dp_sgd_group", **kw)
    n = 200_000
    a0, a1 = ch.sample(n, np.random.default_rng(5))
    b0, b1 = _legacy_sample(ch, n, np.random.default_rng(5))
    np.testing.assert_array_equal(a0, b0)
    c0, c1 = _legacy_sample(ch, n, np.random.default_rng(6))  # independent reference draws
    assert stats.ks_2samp(a1, c1).pvalue > 1e-3
    if loss == "zero":
        # x_T = gamma C1 sum J_t - gamma s sum xi_t, J_t ~ Bin(k, q)
        g, c, T, k, q, s = 0.1, 1.0, 3, 2, 0.3, 1.0
        mean, var = g * c * T * k * q, g * g * (c * c * T * k * q * (1 - q) + s * s * T)
        assert abs(np.mean(a1) - mean) < 5 * math.sqrt(var / n)
        assert np.var(a1) == pytest.approx(var, rel=0.02)


def test_gradient_clipping_zero_field_exact_gaussian_law():
    """x_T = rho^T x_0 + s sum_t rho^t xi_t: mean rho^T x_0, variance s^2 sum rho^2t."""
    s, T, gam, lam, c0 = 0.6, 7, 0.1, 2.0, 1.5
    ch = audit.MethodChains(
        "gradient_clipping",
        s,
        T,
        clip_initial=c0,
        learning_rate=gam,
        weight_decay=lam,
        loss="zero",
    )
    n = 400_000
    x0, x1 = ch.sample(n, np.random.default_rng(9))
    rho = 1 - gam * lam
    var = s * s * sum(rho ** (2 * t) for t in range(T))
    for x, start in ((x0, -c0), (x1, c0)):
        assert abs(np.mean(x) - rho**T * start) < 5 * math.sqrt(var / n)
        assert np.var(x) == pytest.approx(var, rel=0.015)


# -- fresh noise at every step ---------------------------------------------------------------------
def _zero_oracle(x, world, ctx):
    return 0.0 * x


@pytest.mark.parametrize("d", [1, 3])
def test_noise_is_fresh_at_every_step(d):
    T, s, n = 9, 0.5, 200_000
    rule = UpdateRule(phases=(Phase(T, (Gradient(), GradientStep(0.1), AddNoise(s))),))
    x0 = np.random.default_rng(0).standard_normal((n, d))
    xT = interpreter.run(rule, x0, _zero_oracle, rng=np.random.default_rng(1))
    inc = xT - x0
    assert np.var(inc, axis=0) == pytest.approx(np.full(d, T * s * s), rel=0.015)
    if d > 1:  # independent coordinates
        assert abs(np.corrcoef(inc.T)[0, 1]) < 0.01
    # the faults: one draw reused (variance T^2 s^2) and half the noise (T s^2 / 4)
    xr = interpreter.run(rule, x0, _zero_oracle, rng=np.random.default_rng(1), fault="reuse_noise")
    assert np.var(xr - x0, axis=0) == pytest.approx(np.full(d, (T * s) ** 2), rel=0.015)
    xh = interpreter.run(rule, x0, _zero_oracle, rng=np.random.default_rng(1), fault="half_noise")
    assert np.var(xh - x0, axis=0) == pytest.approx(np.full(d, T * s * s / 4), rel=0.015)


def test_gradient_noise_is_fresh_and_scaled_by_the_step():
    T, s, lr, n = 6, 2.0, 0.3, 200_000
    rule = UpdateRule(phases=(Phase(T, (Gradient(), GradientNoise(s), GradientStep(lr))),))
    x0 = np.zeros((n, 1))
    xT = interpreter.run(rule, x0, _zero_oracle, rng=np.random.default_rng(2))
    assert np.var(xT) == pytest.approx(T * (lr * s) ** 2, rel=0.015)
    assert np.all(x0 == 0.0)  # the input is not modified


# -- geometry: ball projection, per-row clipping, blocks --------------------------------------------
def test_project_ball_is_a_ball_not_a_sphere():
    x0 = np.array([[0.3, 0.4], [3.0, 4.0], [0.0, 0.0], [-6.0, 8.0]])
    rule = UpdateRule(prologue=(ProjectBall(1.0),))
    out = interpreter.run(rule, x0, _zero_oracle, rng=np.random.default_rng(0))
    np.testing.assert_allclose(out[0], [0.3, 0.4])  # inside: unchanged
    np.testing.assert_allclose(out[1], [0.6, 0.8])
    np.testing.assert_allclose(out[2], [0.0, 0.0])  # the origin stays
    np.testing.assert_allclose(out[3], [-0.6, 0.8])
    assert np.all(np.linalg.norm(out, axis=1) <= 1.0 + 1e-15)


def test_clip_gradient_is_per_row_l2():
    grads = np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0], [1e200, 1e200]])

    def oracle(x, world, ctx):
        return grads

    rule = UpdateRule(phases=(Phase(1, (Gradient(), ClipGradient(1.0), GradientStep(1.0))),))
    out = interpreter.run(rule, np.zeros((4, 2)), oracle, rng=np.random.default_rng(0))
    np.testing.assert_allclose(-out[0], [0.6, 0.8])
    np.testing.assert_allclose(-out[1], [0.3, 0.4])
    np.testing.assert_allclose(-out[2], [0.0, 0.0])
    np.testing.assert_allclose(-out[3], [math.sqrt(0.5)] * 2)  # no overflow in the norm


def test_phases_restricted_to_a_block_move_only_that_block():
    spec = BlockwiseGradientClippingSpec(
        clip_initial=1.0,
        clip_gradient=1.0,
        learning_rate=0.1,
        blocks=3,
        steps_per_block=2,
        noise_std=1.0,
    )
    rule = spec.update_rule()
    first = UpdateRule(prologue=rule.prologue, phases=rule.phases[:1], blocks=3)
    seen = []

    def oracle(x, world, ctx):
        seen.append((ctx.block, ctx.step, ctx.phase))
        return np.ones_like(x)

    x0 = np.zeros((1000, 6))
    x0[:, 0] = 0.5
    out = interpreter.run(first, x0, oracle, rng=np.random.default_rng(0))
    assert seen == [(0, 0, 0), (0, 1, 0)]
    assert np.all(out[:, 2:] == 0.0) and np.all(out[:, :2] != x0[:, :2])  # default: 2+2+2
    # a caller's partition: block 0 = coordinates {1, 4}
    part = [np.array([1, 4]), np.array([0, 2]), np.array([3, 5])]
    out = interpreter.run(first, x0, oracle, rng=np.random.default_rng(0), partition=part)
    moved = np.any(out != x0, axis=0)
    assert moved.tolist() == [False, True, False, False, True, False]
    # d == k: block i is coordinate i
    assert interpreter.default_partition(3, 3) == [slice(0, 1), slice(1, 2), slice(2, 3)]


def test_every_method_spec_runs_and_langevin_stays_in_its_ball():
    specs = {
        "langevin": LangevinSpec(
            learning_rate=0.5,
            strong_convexity=0.01,
            smoothness=1.1,
            lipschitz=1.0,
            dataset_size=100,
            batch_size=10,
            radius=2.0,
            steps=12,
            noise_std=0.3,
        ),
    }
    steps_seen = []

    def oracle(x, world, ctx):
        if ctx.op.batching == "cyclic":
            steps_seen.append(ctx.step)
        g = x - 5.0
        return ctx.clip_rows(g, ctx.op.per_example_clip) if ctx.op.per_example_clip else g

    out = interpreter.run(
        specs["langevin"].update_rule(), np.zeros((500, 4)), oracle, rng=np.random.default_rng(0)
    )
    assert np.all(np.linalg.norm(out, axis=1) <= 2.0 + 1e-12)
    assert steps_seen == list(range(12))
    for method in SPEC_CLASSES:  # the audit builds and runs every audited method's spec
        if method in audit.METHODS:
            ch = audit.MethodChains(method, 1.0, 4 if method != "output_perturbation" else 0)
            assert type(ch.spec()) is SPEC_CLASSES[method]
            x0, x1 = ch.sample(100, np.random.default_rng(0))
            assert np.all(np.isfinite(x0)) and np.all(np.isfinite(x1))


def test_forget_records_poisson_and_full():
    rule = UpdateRule(
        phases=(Phase(1, (Gradient(batching="poisson", sample_rate=0.25), GradientStep(1.0))),)
    )

    def oracle(x, world, ctx):
        return -ctx.sampled_records * np.ones_like(x) if ctx.sampled_records is not None else x

    n = 200_000
    out = interpreter.run(
        rule, np.zeros((n, 1)), oracle, rng=np.random.default_rng(0), forget_records=4
    )
    assert set(np.unique(out)) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert np.mean(out) == pytest.approx(1.0, abs=0.01)
    assert np.var(out) == pytest.approx(4 * 0.25 * 0.75, rel=0.02)
    full = UpdateRule(phases=(Phase(1, (Gradient(), GradientStep(1.0))),))
    out = interpreter.run(
        full, np.zeros((5, 1)), oracle, rng=np.random.default_rng(0), world=1, forget_records=3
    )
    assert np.all(out == 3.0)
    cyc = UpdateRule(phases=(Phase(1, (Gradient(batching="cyclic", batch_size=2),)),))
    with pytest.raises(InvalidParameterError, match="forget_records"):
        interpreter.run(
            cyc, np.zeros((5, 1)), oracle, rng=np.random.default_rng(0), forget_records=1
        )


def test_torch_backend_same_law_as_numpy():
    torch = pytest.importorskip("torch")
    rule = UpdateRule(
        prologue=(ProjectBall(1.0),),
        phases=(
            Phase(
                4,
                (
                    Gradient(),
                    ClipGradient(0.5),
                    WeightDecay(0.1, 1.0),
                    GradientStep(0.1),
                    AddNoise(0.4),
                ),
                block=0,
            ),
            Phase(3, (Gradient(), ClipGradient(0.5), GradientStep(0.1), AddNoise(0.4)), block=1),
        ),
        blocks=2,
    )

    def oracle(x, world, ctx):
        return ctx.backend.sign(x)

    n = 100_000
    x0 = np.zeros((n, 4))
    x0[:, 0] = 1.0
    a = interpreter.run(rule, x0, oracle, rng=np.random.default_rng(0))
    g = torch.Generator().manual_seed(1)
    b = interpreter.run(rule, x0, oracle, backend=interpreter.TorchBackend(g, "cpu"))
    b = b.numpy()
    for j in range(4):
        assert stats.ks_2samp(a[:, j], b[:, j]).pvalue > 1e-4


@pytest.mark.parametrize(
    "kw,name",
    [
        (dict(fault="bogus"), "fault"),
        (dict(world=2), "world"),
        (dict(partition=[[0], [0]]), "partition"),
        (dict(partition=[[0]]), "partition"),
        (dict(forget_records=-1), "forget_records"),
    ],
)
def test_bad_input_is_named(kw, name):
    rule = UpdateRule(phases=(Phase(1, (AddNoise(1.0),), block=1),), blocks=2)
    with pytest.raises(InvalidParameterError, match=name):
        interpreter.run(rule, np.zeros((3, 2)), _zero_oracle, rng=np.random.default_rng(0), **kw)


def test_bad_rules_and_oracles_are_named():
    rng = np.random.default_rng(0)
    no_grad = UpdateRule(phases=(Phase(1, (GradientStep(0.1),)),))
    with pytest.raises(InvalidParameterError, match="Gradient op earlier"):
        interpreter.run(no_grad, np.zeros((3, 1)), _zero_oracle, rng=rng)
    rule = UpdateRule(phases=(Phase(1, (Gradient(), GradientStep(0.1))),))
    with pytest.raises(InvalidParameterError, match="oracle"):
        interpreter.run(rule, np.zeros((3, 2)), lambda x, w, c: np.zeros((3, 1)), rng=rng)
    with pytest.raises(InvalidParameterError, match="rng"):
        interpreter.run(rule, np.zeros((3, 1)), _zero_oracle)
    with pytest.raises(InvalidParameterError, match="x0"):
        interpreter.run(rule, np.zeros(3), _zero_oracle, rng=rng)
    with pytest.raises(InvalidParameterError, match="d"):
        interpreter.run(UpdateRule(blocks=4), np.zeros((3, 2)), _zero_oracle, rng=rng)
