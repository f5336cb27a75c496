"""Tests for unlearn_theory.symbolic: sympy forms equal the numeric kernels; T* derivation."""

from __future__ import annotations

import math
import subprocess
import sys

import mpmath as mp
import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from unlearn_theory import conversions, gaussian, iteration, planning, renyi, subspace
from unlearn_theory import symbolic as S
from unlearn_theory.errors import InvalidParameterError

GC = dict(clip_initial=1.0, clip_gradient=10.0, learning_rate=0.001, weight_decay=5.0)


def _ev(name, **kw):
    with mp.workdps(50):
        return float(S.evaluate(name, **kw))


def test_import_does_not_load_sympy():
    code = "import sys, unlearn_theory, unlearn_theory.symbolic;print('sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("eps,mu", [(0.0, 0.3), (0.5, 1.0), (1.0, 0.5), (2.0, 3.0), (5.0, 2.0)])
def test_gaussian_delta_matches_kernel(eps, mu):
    want = _ev("gaussian_delta", epsilon=eps, mu=mu)
    assert gaussian.delta(eps, mu=mu) == pytest.approx(want, rel=1e-11)


def test_gaussian_delta_numpy_lambdify_is_vectorised():
    fn, args = S.lambdify("gaussian_delta", module="numpy")
    assert args == ("epsilon", "mu")
    e = np.array([0.1, 1.0, 2.0])
    m = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(fn(e, m), gaussian.delta(e, mu=m), rtol=1e-9)


@pytest.mark.parametrize("alpha,mu", [(1.5, 0.3), (2.0, 1.0), (32.0, 0.1)])
def test_gaussian_rdp_matches_kernel(alpha, mu):
    want = _ev("gaussian_rdp", order=alpha, mu=mu)
    assert renyi.gaussian(alpha, mu=mu) == pytest.approx(want, rel=1e-14)


@pytest.mark.parametrize("order", [2, 3, 5, 8, 16])
@pytest.mark.parametrize("q,z", [(0.01, 1.0), (0.1, 0.8), (0.5, 2.0)])
def test_subsampled_gaussian_integer_order_matches_kernel(order, q, z):
    fn, args = S.subsampled_gaussian_rdp(order, lambdified=True)
    assert args == ("noise_multiplier", "sample_rate")
    with mp.workdps(50):
        want = float(fn(mp.mpf(z), mp.mpf(q)))
    got = renyi.subsampled_gaussian(order, sample_rate=q, noise_multiplier=z)
    assert got == pytest.approx(want, rel=1e-10)


def test_subsampled_general_sum_expands_to_integer_form():
    import sympy as sp

    s = S.symbols()
    general = S.expression("subsampled_gaussian_rdp").subs(s["order"], 4).doit()
    explicit = S.subsampled_gaussian_rdp(4)
    vals = {s["sample_rate"]: sp.Rational(1, 10), s["noise_multiplier"]: sp.Rational(3, 2)}
    assert float(general.subs(vals)) == pytest.approx(float(explicit.subs(vals)), rel=1e-14)


@pytest.mark.parametrize("T", [1, 3, 40])
@pytest.mark.parametrize("wd", [0.0, 5.0, 200.0])
def test_shifted_renyi_coefficient_matches_iteration(T, wd):
    kw = dict(GC, weight_decay=wd)
    sym = dict(
        clip_initial=kw["clip_initial"],
        clip_gradient=kw["clip_gradient"],
        learning_rate=kw["learning_rate"],
        steps=T,
        noise_std=0.7,
    )
    if wd == 0.0:
        want = _ev("shifted_renyi_coefficient_lambda0", **sym)
        b = _ev("shifted_renyi_B_lambda0", **{k: sym[k] for k in sym if k != "noise_std"})
    else:
        want = _ev("shifted_renyi_coefficient", weight_decay=wd, **sym)
        b = _ev(
            "shifted_renyi_B",
            weight_decay=wd,
            **{k: sym[k] for k in sym if k != "noise_std"},
        )
    got = iteration.constant_coefficient(steps=T, noise_std=0.7, **kw)
    assert want <= got <= want * (1 + 1e-11)
    assert iteration.constant_B(steps=T, **kw) == pytest.approx(b, rel=1e-12)


@pytest.mark.parametrize("T", [2, 10, 30])
def test_koloskova_closed_forms_match_paper_mode(T):
    eps, delta = 1.0, 1e-5
    L = math.log(1 / delta)
    kw = dict(clip_initial=1.0, clip_gradient=100.0, learning_rate=0.001, weight_decay=500.0)
    want = _ev("koloskova_variance", epsilon=eps, L=L, steps=T, **kw)
    got = planning.paper_gradient_clipping_noise_std(epsilon=eps, delta=delta, steps=T, **kw)
    assert got**2 == pytest.approx(want, rel=1e-12)
    kw0 = dict(kw, weight_decay=0.0)
    want0 = _ev(
        "koloskova_variance_lambda0",
        epsilon=eps,
        L=L,
        steps=T,
        **{k: v for k, v in kw0.items() if k != "weight_decay"},
    )
    got0 = planning.paper_gradient_clipping_noise_std(epsilon=eps, delta=delta, steps=T, **kw0)
    assert got0**2 == pytest.approx(want0, rel=1e-12)


@pytest.mark.parametrize("eps,delta", [(0.1, 1e-5), (1.0, 1e-5), (8.0, 1e-10)])
def test_mironov_budget_and_order(eps, delta):
    L = math.log(1 / delta)
    a = _ev("mironov_max_coefficient", epsilon=eps, L=L)
    assert iteration.mironov_max_coefficient(epsilon=eps, delta=delta) == pytest.approx(
        a, rel=1e-11
    )
    assert conversions.max_linear_coefficient(
        epsilon=eps, delta=delta, conversion="mironov"
    ) == pytest.approx(a, rel=1e-10)
    # Dolgova & Stich: ε_q*/q* = a_max^M at q* (docs/theory.md §3.4)
    q = _ev("mironov_optimal_order", epsilon=eps, L=L)
    assert (eps - L / (q - 1)) / q == pytest.approx(a, rel=1e-10)
    # q* minimises q/ε_q
    res = minimize_scalar(
        lambda u: (1 + u) / (eps - L / u),
        bounds=(L / eps * 1.0001, 1e6),
        method="bounded",
        options={"xatol": 1e-12},
    )
    assert 1 + res.x == pytest.approx(q, rel=1e-5)


@pytest.mark.parametrize("analysis", ["renyi", "best"])
@pytest.mark.parametrize("k,T", [(1, 5), (4, 20), (10, 300)])
def test_blockwise_variance_matches_subspace(k, T, analysis):
    # the budget a is the route's: the Rényi a_max, or μ(ε, δ)²/2 (Gaussian DP, the default)
    a = iteration.max_certified_coefficient(epsilon=1.0, delta=1e-5, analysis=analysis)
    want = _ev("blockwise_variance", blocks=k, steps=T, coefficient=a, **GC)
    got = subspace.blockwise_noise_std(
        epsilon=1.0, delta=1e-5, blocks=k, steps_per_block=T, analysis=analysis, **GC
    )
    assert got**2 == pytest.approx(want, rel=1e-9)
    assert got**2 >= want


@pytest.mark.parametrize("k", [1, 2, 10])
def test_dolgova_stich_variance_matches_code_mode(k):
    a = iteration.mironov_max_coefficient(epsilon=1.0, delta=1e-5)
    want = _ev(
        "dolgova_stich_variance", blocks=k, coefficient=a, **{key: val for key, val in GC.items()}
    )
    got = subspace.dolgova_stich_schedule(epsilon=1.0, delta=1e-5, blocks=k, **GC)
    assert got["noise_std"] ** 2 == pytest.approx(want, rel=1e-10)
    # (A2) is k·B²/(2W·a) evaluated at the real T* (docs/theory.md §6.4)
    t_star = _ev("optimal_steps", **GC)
    at_star = _ev("blockwise_variance", blocks=k, steps=t_star, coefficient=a, **GC)
    assert at_star == pytest.approx(want, rel=1e-10)


def test_optimal_steps_derivation_checks_hold():
    d = S.optimal_steps_derivation()
    assert all(d["checks"].values()), d["checks"]
    assert d["derivative_at_x_star"] == 0


@pytest.mark.parametrize(
    "kw",
    [
        GC,
        dict(clip_initial=2.0, clip_gradient=3.0, learning_rate=0.02, weight_decay=0.7),
        dict(clip_initial=1.0, clip_gradient=10.0, learning_rate=0.01, weight_decay=1.0),
    ],
)
def test_optimal_steps_numerically(kw):
    t_star = _ev("optimal_steps", **kw)
    assert iteration.optimal_steps_real(**kw) == pytest.approx(t_star, rel=1e-12)

    def ratio(t):  # B²/W at real t, from the symbolic B and W
        b = _ev("shifted_renyi_B", steps=t, **kw)
        w = _ev(
            "shifted_renyi_W",
            steps=t,
            learning_rate=kw["learning_rate"],
            weight_decay=kw["weight_decay"],
        )
        return b * b / w

    res = minimize_scalar(
        ratio, bounds=(0.5, 10 * t_star), method="bounded", options={"xatol": 1e-9}
    )
    assert res.x == pytest.approx(t_star, rel=1e-4)
    # the minimum value: 4γ(2 − γλ)C0C1(2 − λC0/C1)
    g, lam, c0, c1 = (
        kw["learning_rate"],
        kw["weight_decay"],
        kw["clip_initial"],
        kw["clip_gradient"],
    )
    assert ratio(t_star) == pytest.approx(
        4 * g * (2 - g * lam) * c0 * c1 * (2 - lam * c0 / c1), rel=1e-10
    )
    # integer optimum is among ⌊T*⌋, ⌈T*⌉ (brute force)
    ints = range(1, int(3 * t_star) + 3)
    best = min(
        ints,
        key=lambda t: (
            iteration.constant_B(steps=t, **kw) ** 2
            / iteration.constant_W(
                steps=t, learning_rate=kw["learning_rate"], weight_decay=kw["weight_decay"]
            )
        ),
    )
    assert best in (math.floor(t_star), math.ceil(t_star))


def test_optimal_steps_lambda0():
    kw = dict(clip_initial=5.0, clip_gradient=1.0, learning_rate=0.05)
    t = _ev("optimal_steps_lambda0", **kw)
    assert t == pytest.approx(100.0)
    assert iteration.optimal_steps_real(weight_decay=0.0, **kw) == pytest.approx(t, rel=1e-14)


def test_latex_and_names():
    assert set(S.names()) >= {
        "gaussian_delta",
        "shifted_renyi_coefficient",
        "koloskova_variance",
        "koloskova_variance_lambda0",
        "blockwise_variance",
        "optimal_steps",
    }
    for name in S.names():
        assert isinstance(S.latex(name), str) and S.latex(name)
    assert "\\operatorname{erf}" in S.latex("gaussian_delta")
    assert "72" in S.latex("koloskova_variance")
    assert "\\sum" in S.latex("subsampled_gaussian_rdp")


def test_bad_names_and_arguments():
    with pytest.raises(InvalidParameterError, match="name"):
        S.expression("nope")
    with pytest.raises(InvalidParameterError, match="mu"):
        S.evaluate("gaussian_delta", epsilon=1.0)
    with pytest.raises(InvalidParameterError, match="sigma"):
        S.evaluate("gaussian_delta", epsilon=1.0, mu=1.0, sigma=2.0)
    with pytest.raises(InvalidParameterError, match="order"):
        S.subsampled_gaussian_rdp(1)
