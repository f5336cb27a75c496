"""Scalar fast path and adaptive quadrature of the exact Gaussian module (issue 2 performance).

The scalar path must give the same log δ as the vectorised kernel (to a few ulps), land its
inverses on the feasible side (judged by 50-digit mpmath) as tightly as the vectorised path, and
the adaptive Gauss-Legendre order must keep the 1e-12 relative accuracy.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import load_json, load_script
from unlearn_theory import gaussian

exact_delta = load_script("make_gaussian_oracles").exact_delta
ORACLES = load_json("gaussian_oracles.json")["rows"]


def test_scalar_kernel_matches_vectorised_kernel_on_oracle_rows():
    eps = np.array([r["epsilon"] for r in ORACLES])
    mus = np.array([r["mu"] for r in ORACLES])
    vec = gaussian._log_delta_kernel(eps, mus)
    sca = np.array([gaussian._log_delta_scalar(float(e), float(m)) for e, m in zip(eps, mus)])
    diff = np.abs(sca - vec) / np.maximum(1.0, np.abs(vec))
    assert np.max(diff) <= 4e-15, np.max(diff)
    # and the scalar kernel meets the 1e-12 accuracy goal on its own
    acc = [r for r in ORACLES if r["domain"] == "accuracy"]
    rel = [
        abs(
            float(
                mp.expm1(
                    mp.mpf(gaussian._log_delta_scalar(r["epsilon"], r["mu"]))
                    - mp.mpf(r["log_delta"])
                )
            )
        )
        for r in acc
    ]
    assert max(rel) <= 1e-12


def test_completely_monotone_lower_bound_used_by_quadrature_order():
    # g(t) = 1 - tR(t) >= 1/(t^2 + 3), the lower bound behind _GL_RATIO_MAX
    with mp.workdps(40):
        for t in [mp.mpf(i) / 8 for i in range(0, 800)] + [mp.mpf(10) ** k for k in range(2, 6)]:
            r_t = mp.sqrt(mp.pi / 2) * mp.exp(t * t / 2) * mp.erfc(t / mp.sqrt(2))
            assert (1 - t * r_t) * (t * t + 3) >= 1


@pytest.mark.parametrize("order_index", range(len(gaussian._GL_RATIO_MAX)))
@pytest.mark.parametrize("x", [1.0, 3.0, 11.9, 12.5, 25.0, 36.0])
def test_adaptive_quadrature_order_at_its_switching_ratio(order_index, x):
    # mu/x just below each switching ratio: the lowest order allowed there is used
    m = x * gaussian._GL_RATIO_MAX[order_index] * (1 - 1e-9)
    assert gaussian._gl_order(x, m) == gaussian._GL_ORDERS[order_index]
    eps = m * (x + m / 2)  # a = m/2 - eps/m = -x
    ref = exact_delta(eps, m)
    for ours in (
        gaussian._log_delta_scalar(eps, m),
        float(gaussian._log_delta_kernel(np.array([eps]), np.array([m]))[0]),
    ):
        assert abs(float(mp.expm1(mp.mpf(ours) - mp.log(ref)))) <= 1e-12


@pytest.mark.parametrize("log10_delta", [-300, -100, -12, -5, -1, math.log10(0.5)])
@pytest.mark.parametrize("mu", [1e-3, 0.02, 0.3, 1.0, 5.0, 100.0, 1e3])
def test_scalar_and_vectorised_epsilon_agree_and_are_feasible(log10_delta, mu):
    d = 10.0**log10_delta
    s = gaussian.epsilon(d, mu=mu)
    v = float(gaussian.epsilon(np.array([d]), mu=mu)[0])
    assert isinstance(s, float)
    assert exact_delta(s, mu) <= d and exact_delta(v, mu) <= d
    assert abs(s - v) <= 2e-12 * max(abs(v), 1e-300)


@pytest.mark.parametrize("log10_delta", [-300, -100, -12, -5, -1, math.log10(0.5)])
@pytest.mark.parametrize("epsilon", [0.0, 1e-3, 0.5, 1.0, 10.0, 300.0, 1e3])
def test_scalar_and_vectorised_mu_agree_and_are_feasible(log10_delta, epsilon):
    d = 10.0**log10_delta
    s = gaussian.mu(epsilon=epsilon, delta=d)
    v = float(gaussian.mu(epsilon=np.array([epsilon]), delta=d)[0])
    assert isinstance(s, float)
    assert exact_delta(epsilon, s) <= d and exact_delta(epsilon, v) <= d
    assert abs(s - v) <= 2e-12 * v
    assert exact_delta(epsilon, s * (1 + 1e-11)) > d  # tight (upward-rounded evaluator)


def test_numpy_scalars_take_the_fast_path_and_bad_scalars_still_raise():
    assert gaussian.epsilon(np.float64(1e-5), mu=np.int64(1)) == gaussian.epsilon(1e-5, mu=1.0)
    assert gaussian.mu(epsilon=np.float32(1.0), delta=1e-5) == gaussian.mu(epsilon=1.0, delta=1e-5)
    from unlearn_theory import InvalidParameterError

    for bad in (True, float("nan"), float("inf"), -1.0):
        with pytest.raises(InvalidParameterError, match="mu"):
            gaussian.epsilon(1e-5, mu=bad)
        if bad == float("inf"):
            continue  # mu(epsilon=inf) is +inf by design (tests/theory/test_structure_assumptions.py)
        with pytest.raises(InvalidParameterError, match="epsilon"):
            gaussian.mu(epsilon=bad, delta=1e-5)


@given(mu=st.floats(1e-3, 1e3), log10_delta=st.floats(-300, -0.31))
def test_vectorised_epsilon_never_overshoots(mu, log10_delta):
    # the scalar path is covered by test_gaussian.py; keep the vectorised path covered too
    d = 10.0**log10_delta
    e = gaussian.epsilon(np.array([d]), mu=mu)
    assert gaussian.delta(e, mu=mu)[0] <= d


@given(eps=st.floats(0, 1e3), log10_delta=st.floats(-300, -0.31))
def test_vectorised_mu_never_overshoots(eps, log10_delta):
    d = 10.0**log10_delta
    m = gaussian.mu(epsilon=np.array([eps]), delta=d)
    assert gaussian.delta(eps, mu=m)[0] <= d
