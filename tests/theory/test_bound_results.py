"""Every function that returns a privacy quantity returns one :class:`Bound` shape.

For each function whose return type changed from a tuple/dict/float to a Bound: the result is a
Bound of the right kind and its value equals the value the function returned before the change
(literals recorded from the tuple-returning version at the same inputs; the conversions
themselves are checked against mpmath and closed forms in test_renyi.py, test_ridge.py, ...).
And the one rule: only exact and upper bounds certify.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from unlearn_theory import (
    conversions,
    dp_sgd,
    gaussian,
    group,
    iteration,
    langevin,
    per_instance,
    renyi,
    ridge,
    subspace,
)
from unlearn_theory.bounds import CERTIFYING_KINDS, Bound, BoundKind, certifies
from unlearn_theory.errors import InvalidParameterError
from unlearn_theory.pld import PLDResult, PrivacyLossDistribution

ORDERS = np.array([2.0, 3.0, 4.0, 8.0, 16.0, 32.0, 64.0])
LANG = dict(
    steps=40,
    noise_std=0.05,
    learning_rate=0.1,
    strong_convexity=1.0,
    smoothness=2.0,
    lipschitz=1.0,
    dataset_size=1000,
)
BLOCKS = dict(
    noise_std=0.5,
    blocks=4,
    clip_initial=1.0,
    clip_gradient=0.5,
    learning_rate=0.1,
    weight_decay=0.5,
)


def _gauss_curve():
    return renyi.gaussian(ORDERS, mu=0.8)


# (call, value before the change, order before the change (None: not reported), source word)
CASES = {
    "renyi.to_dp": (
        lambda: renyi.to_dp(ORDERS, _gauss_curve(), delta=1e-5),
        3.7741091678493084,
        8.0,
        "to_dp",
    ),
    "renyi.to_log_delta": (
        lambda: renyi.to_log_delta(ORDERS, _gauss_curve(), epsilon=1.0),
        -1.9895425048824487,
        3.0,
        "to_log_delta",
    ),
    "renyi.to_delta": (
        lambda: renyi.to_delta(ORDERS, _gauss_curve(), epsilon=1.0),
        0.1367579772427367,
        3.0,
        "to_delta",
    ),
    "conversions.curve_epsilon": (
        lambda: conversions.curve_epsilon(lambda a: 0.32 * a, delta=1e-6),
        4.0636958429292935,
        7.087184913741746,
        "curve_epsilon",
    ),
    "conversions.curve_log_delta": (
        lambda: conversions.curve_log_delta(lambda a: 0.32 * a, epsilon=2.0),
        -4.410914472630115,
        4.0660637791082515,
        "curve_log_delta",
    ),
    "conversions.linear_epsilon": (
        lambda: conversions.linear_epsilon(0.02, delta=1e-5),
        0.7943147742748627,
        21.54596888590985,
        "linear_epsilon",
    ),
    "conversions.linear_epsilon(mironov)": (
        lambda: conversions.linear_epsilon(0.02, delta=1e-5, conversion="mironov"),
        0.9797051824385961,
        24.992629560940404,
        "mironov",
    ),
    "conversions.linear_log_delta": (
        lambda: conversions.linear_log_delta(0.02, epsilon=1.0),
        -16.243063247798062,
        26.463026283078435,
        "linear_log_delta",
    ),
    "iteration.linear_epsilon": (
        lambda: iteration.linear_epsilon(0.05, delta=1e-6),
        1.4715947505338878,
        15.86692557710606,
        "linear_epsilon",
    ),
    "langevin.certified_epsilon": (
        lambda: langevin.certified_epsilon(delta=1e-5, analysis="renyi", **LANG),
        0.0004546795499959827,
        8596.17348505754,
        "PABI",
    ),
    "subspace.blockwise_epsilon(rdp)": (
        lambda: subspace.blockwise_epsilon(
            delta=1e-5, steps_per_block=5, analysis="renyi", **BLOCKS
        ),
        25.43277197096173,
        2.175049052405788,
        "shifted_renyi(blockwise)+improved_conversion",
    ),
    "subspace.blockwise_epsilon(gaussian)": (
        lambda: subspace.blockwise_epsilon(delta=1e-5, steps_per_block=1, **BLOCKS),
        65.31921988848795,
        None,
        "gaussian_profile(composed blocks)",
    ),
    "dp_sgd.dp_sgd_epsilon": (
        lambda: dp_sgd.dp_sgd_epsilon(
            noise_multiplier=1.1, sample_rate=0.01, steps=200, delta=1e-5
        ),
        0.7208643898000416,  # PLD at the 8e-5 default grid (dp-accounting: 0.72086533)
        None,
        "dp_sgd_epsilon",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_upper_bound_results_keep_their_values(name):
    call, value, order, word = CASES[name]
    b = call()
    assert isinstance(b, Bound)
    assert b.kind is BoundKind.UPPER and b.certifies and certifies(b.kind)
    assert float(b) == pytest.approx(value, rel=1e-12, abs=1e-300)
    if order is None:
        assert b.order is None or name == "dp_sgd.dp_sgd_epsilon"
    else:
        assert b.order == pytest.approx(order, rel=1e-12)
    assert word in b.source
    assert b.to_dict()["kind"] == "upper"


def test_renyi_to_dp_bound_matches_its_own_order():
    """The ε of the Bound is the conversion at the order it reports (Gaussian: closed form)."""
    b = renyi.to_dp(ORDERS, _gauss_curve(), delta=1e-5)
    again = conversions.epsilon_at_order(b.order, 0.32 * b.order, delta=1e-5)
    assert float(b) == pytest.approx(float(again), rel=1e-12)
    assert b.details["conversion"] == "improved" and b.details["delta"] == 1e-5
    # a Bound is never below the exact Gaussian ε (the RDP route is an upper bound)
    assert float(b) >= float(gaussian.epsilon(1e-5, mu=0.8))


def test_linear_zero_coefficient_has_no_order():
    b = conversions.linear_epsilon(0.0, delta=1e-5)
    assert float(b) == 0.0 and b.order is None and b.kind is BoundKind.UPPER
    ld = conversions.linear_log_delta(0.0, epsilon=1.0)
    assert float(ld) == -math.inf and ld.order is None
    assert ld.to_dict()["value"] == "-inf"


def test_dp_sgd_epsilon_names_its_route():
    b = dp_sgd.dp_sgd_epsilon(noise_multiplier=1.1, sample_rate=0.01, steps=200, delta=1e-5)
    d = b.details
    assert float(b) == min(d["pld_epsilon"], d["rdp_epsilon"])
    assert d["route"] in ("pld", "rdp") and d["route"].upper() in b.source
    if d["route"] == "pld":
        assert d["order"] is None and d["pld_grid"] > 0
    else:
        assert d["order"] > 1
    # the calibrated noise multiplier stays a float parameter, and it certifies
    z = dp_sgd.dp_sgd_noise_multiplier(
        epsilon=1.0, delta=1e-5, sample_rate=0.01, steps=200, rtol=1e-2
    )
    assert type(z) is float
    e = dp_sgd.dp_sgd_epsilon(noise_multiplier=z, sample_rate=0.01, steps=200, delta=1e-5)
    assert float(e) <= 1.0


def test_group_privacy_returns_two_upper_bounds():
    g = group.group_privacy(0.3, 1e-6, 5)
    assert isinstance(g, group.GroupGuarantee) and g.group_size == 5
    for b in (g.epsilon, g.delta):
        assert isinstance(b, Bound) and b.kind is BoundKind.UPPER and b.certifies
        assert b.details["group_size"] == 5
    assert float(g.epsilon) == 1.5
    assert float(g.delta) == pytest.approx(9.951697641862011e-06, rel=1e-12)
    # the splits return calibrated parameters (a tuple of floats), not bounds
    e1, d1 = group.split_group_budget(1.5, 1e-5, 5)
    assert isinstance(e1, float) and isinstance(d1, float)
    assert float(group.group_privacy(e1, d1, 5).delta) <= 1e-5


M0, S0 = np.zeros(2), np.eye(2)
M1, S1 = np.array([0.7, -0.3]), np.array([[1.3, 0.2], [0.2, 0.8]])


@pytest.mark.parametrize(
    "cov1,rtol,value,kind,word",
    [
        (S0, 1e-6, 0.0528758245299126, "exact", "gaussian_profile"),
        (S1, 1e-6, 0.07997274564171497, "exact", "Fourier"),
        (S1, 1e-15, 0.219132861507065, "upper", "Renyi"),
    ],
)
def test_gaussian_hockey_stick_returns_a_bound(cov1, rtol, value, kind, word):
    b = ridge.gaussian_hockey_stick(1.0, M0, S0, M1, cov1, rtol=rtol)
    assert isinstance(b, Bound) and b.kind == kind and b.certifies
    assert float(b) == pytest.approx(value, rel=1e-12)
    assert word in b.source and "error_bound" in b.details
    if cov1 is S0:  # equal covariances: the exact Gaussian profile
        mu = float(np.linalg.norm(M1))
        assert float(b) == pytest.approx(float(gaussian.delta(1.0, mu=mu)), rel=1e-12)


def test_pld_result_bound():
    r = PrivacyLossDistribution.from_gaussian(mu=1.0).epsilon(1e-5)
    b = r.bound
    assert b.kind is BoundKind.UPPER and float(b) == r.upper == float(r)
    assert r.lower_bound.kind is BoundKind.LOWER and not r.lower_bound.certifies
    assert float(r.lower_bound) <= float(b)
    exact = float(gaussian.epsilon(1e-5, mu=1.0))
    assert float(r.lower_bound) <= exact * (1 + 1e-9) and exact <= float(b) * (1 + 1e-9)


def test_renyi_curve_epsilon_keeps_the_curve_kind():
    c = langevin.unlearning_curve(**LANG)
    assert c.kind is BoundKind.UPPER
    b = c.epsilon(1e-5, analysis="renyi")
    assert b.kind is BoundKind.UPPER and b.order > 1
    g = c.epsilon(1e-5)  # the Gaussian-DP route wins: no order, the route named
    assert g.kind is BoundKind.UPPER and g.order is None and g.details["route"] == "gaussian_dp"
    est = langevin.RenyiCurve(c.function, kind="estimate", description="x")
    assert est.kind is BoundKind.ESTIMATE and not est.epsilon(1e-5).certifies


def test_estimators_return_library_bounds():
    from verification import estimators

    rng = np.random.default_rng(0)
    x0, x1 = rng.normal(0, 1, 4000), rng.normal(1, 1, 4000)
    low = estimators.threshold_epsilon_lower(x0, x1, delta=1e-2, thresholds=[0.0, 0.5, 1.0])
    assert isinstance(low, Bound) and low.kind is BoundKind.LOWER and not low.certifies
    assert low.details["confidence"] == pytest.approx(0.95)
    assert "threshold" in low.source
    est = estimators.threshold_estimate(x0, x1, delta=1e-2)
    assert isinstance(est, Bound) and est.kind is BoundKind.ESTIMATE and not est.certifies
    assert est.details["confidence"] is None


def test_dataclass_kinds_are_parsed():
    """A string kind is parsed into BoundKind (and still compares equal to the string)."""
    r = PLDResult(upper=1.0, lower=0.5, query="epsilon", grid=1e-3, kind="upper")
    assert r.kind is BoundKind.UPPER and r.kind == "upper"
    with pytest.raises(InvalidParameterError, match="kind"):
        PLDResult(upper=1.0, lower=0.5, query="epsilon", grid=1e-3, kind="diagnostic")
    alloc = iteration.constrained_coefficient(
        iteration.constant_schedule(
            steps=5,
            learning_rate=0.1,
            weight_decay=0.5,
            clip_gradient=0.5,
            noise_std=0.3,
            clip_initial=1.0,
        )
    )
    assert alloc.kind is BoundKind.UPPER and float(alloc.bound) == alloc.coefficient
    barrier = per_instance.loss_barrier(lambda t: float(np.sum(t * t)), [0.0], [1.0])
    assert barrier.kind is BoundKind.ESTIMATE and not certifies(barrier.kind)
    sched = subspace.blockwise_schedule(
        epsilon=2.0,
        delta=1e-5,
        blocks=2,
        clip_initial=1.0,
        clip_gradient=0.5,
        learning_rate=0.1,
        weight_decay=0.5,
    )
    assert sched.kind is BoundKind.UPPER and sched.bound.value == sched.epsilon <= 2.0
    cal = ridge.calibrate_noise([0.1, 0.2], epsilon=1.0, delta=1e-5)
    assert cal.kind is BoundKind.EXACT


@pytest.mark.parametrize("kind", list(BoundKind))
def test_only_exact_and_upper_certify(kind):
    want = kind in (BoundKind.EXACT, BoundKind.UPPER)
    assert certifies(kind) is want
    assert certifies(kind.value) is want  # the string spelling too
    assert Bound(1.0, kind).certifies is want
    assert (kind in CERTIFYING_KINDS) is want
    b = Bound(1.0, kind, source="test")
    if want:
        assert b.require_certifying() is b
    else:
        with pytest.raises(Exception, match="only exact or upper"):
            b.require_certifying()


@given(st.text(max_size=12).filter(lambda s: s not in {k.value for k in BoundKind}))
def test_unknown_kinds_are_refused(word):
    with pytest.raises(InvalidParameterError, match="kind"):
        certifies(word)
    with pytest.raises(InvalidParameterError, match="kind"):
        Bound(0.0, word)


def test_audit_results_expose_bounds():
    from verification.runner import AuditResult, DeltaAuditResult

    r = AuditResult(0.8, "lower", 1e-5, 0.95, 1000, "ok")
    assert r.kind is BoundKind.LOWER and r.to_dict()["kind"] == "lower"
    b = r.to_bound()
    assert float(b) == 0.8 and b.kind is BoundKind.LOWER and not b.certifies
    assert AuditResult(None, "lower", 1e-5, 0.95, 10, "insufficient_precision").to_bound() is None
    d = DeltaAuditResult(1.0, "P||Q", 1e-3, 2e-3, 1.5e-3, 0.95, 100, "plrv-bernstein")
    lo, hi, est = d.to_bounds()
    assert (lo.kind, hi.kind, est.kind) == ("lower", "upper", "estimate")
    assert float(lo) <= float(est) <= float(hi)
