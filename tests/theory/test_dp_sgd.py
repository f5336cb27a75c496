"""Tests of dp_sgd_epsilon / dp_sgd_noise_multiplier (Poisson-subsampled Gaussian DP-SGD)."""

from __future__ import annotations

import math

import mpmath as mp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn_theory import certify, gaussian
from unlearn_theory.dp_sgd import dp_sgd_epsilon, dp_sgd_noise_multiplier
from unlearn_theory.errors import InvalidParameterError, NumericalPrecisionError

from .test_gaussian import DPS, mp_delta, mp_eps


def test_full_batch_equals_composed_gaussian():
    # sample_rate = 1: T Gaussian steps with mu = 1/z, exactly mu_total = sqrt(T)/z
    z, steps, delta = 2.0, 16, 1e-6
    exact = gaussian.epsilon(delta, mu=math.sqrt(steps) / z)
    ours = float(dp_sgd_epsilon(noise_multiplier=z, sample_rate=1.0, steps=steps, delta=delta))
    assert exact <= ours <= exact * (1 + 1e-5)


def test_subsampling_amplifies():
    kw = dict(noise_multiplier=1.0, steps=100, delta=1e-5)
    assert float(dp_sgd_epsilon(sample_rate=0.01, **kw)) < float(
        dp_sgd_epsilon(sample_rate=0.1, **kw)
    )


@settings(max_examples=3, deadline=None)
@given(
    eps=st.floats(0.5, 4.0),
    q=st.floats(0.005, 0.05),
    steps=st.integers(10, 300),
)
def test_calibration_never_overshoots(eps, q, steps):
    z = dp_sgd_noise_multiplier(epsilon=eps, delta=1e-5, sample_rate=q, steps=steps, rtol=1e-2)
    assert float(dp_sgd_epsilon(noise_multiplier=z, sample_rate=q, steps=steps, delta=1e-5)) <= eps
    # and it is not wildly conservative: 2% less noise breaks the target
    z_less = z * (1 - 0.02)
    assert (
        float(dp_sgd_epsilon(noise_multiplier=z_less, sample_rate=q, steps=steps, delta=1e-5)) > eps
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(noise_multiplier=0.0, sample_rate=0.1, steps=10, delta=1e-5),
        dict(noise_multiplier=1.0, sample_rate=0.0, steps=10, delta=1e-5),
        dict(noise_multiplier=1.0, sample_rate=1.1, steps=10, delta=1e-5),
        dict(noise_multiplier=1.0, sample_rate=0.1, steps=0, delta=1e-5),
        dict(noise_multiplier=1.0, sample_rate=0.1, steps=2.5, delta=1e-5),
        dict(noise_multiplier=1.0, sample_rate=0.1, steps=10, delta=1.0),
        dict(noise_multiplier=float("nan"), sample_rate=0.1, steps=10, delta=1e-5),
    ],
)
def test_bad_input(kwargs):
    with pytest.raises(InvalidParameterError):
        dp_sgd_epsilon(**kwargs)


def test_bad_calibration_input():
    with pytest.raises(InvalidParameterError):
        dp_sgd_noise_multiplier(epsilon=-1.0, delta=1e-5, sample_rate=0.1, steps=10)
    with pytest.raises(InvalidParameterError):
        dp_sgd_noise_multiplier(epsilon=1.0, delta=0.0, sample_rate=0.1, steps=10)


@pytest.mark.peer
def test_peer_opacus_style_calibration_not_below_ours():
    dpa = pytest.importorskip("dp_accounting")
    q, steps, eps, delta = 0.02, 200, 2.0, 1e-5
    z = dp_sgd_noise_multiplier(epsilon=eps, delta=delta, sample_rate=q, steps=steps, rtol=1e-3)
    acc = dpa.rdp.RdpAccountant()
    acc.compose(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(z)), steps)
    # RDP with a fixed grid is looser than ours: at our z it reports at least (about) our eps
    assert acc.get_epsilon(delta) >= eps * 0.999


@pytest.mark.slow
def test_standard_case_close_to_dp_accounting_pld():
    dpa = pytest.importorskip("dp_accounting")
    from dp_accounting.pld import pld_privacy_accountant

    acc = pld_privacy_accountant.PLDAccountant(value_discretization_interval=1e-4)
    acc.compose(dpa.PoissonSampledDpEvent(0.01, dpa.GaussianDpEvent(1.0)), 10000)
    theirs = acc.get_epsilon(1e-5)
    ours = float(dp_sgd_epsilon(noise_multiplier=1.0, sample_rate=0.01, steps=10000, delta=1e-5))
    assert abs(ours - theirs) <= 1e-4 * theirs


# ---------------------------------------------------------------------------------------------
# astronomical step counts: the PLD refuses, DP-SGD falls back to RDP


def test_pld_refuses_astronomical_compositions_and_dp_sgd_falls_back_to_rdp():
    from unlearn_theory import dp_sgd
    from unlearn_theory.pld import PrivacyLossDistribution

    pld = PrivacyLossDistribution.from_subsampled_gaussian(sample_rate=1e-3, noise_multiplier=1.0)
    with pytest.raises(NumericalPrecisionError, match="compositions"):
        pld.self_compose(2**41).epsilon(1e-5)
    eps = float(
        dp_sgd.dp_sgd_epsilon(sample_rate=1e-3, noise_multiplier=1.0, steps=2**62, delta=1e-5)
    )
    assert math.isfinite(eps) and eps > 0


# ---------------------------------------------------------------------------------------------
# group privacy at sample_rate = 1 against the exact Gaussian (mpmath)


def test_dp_sgd_group_full_batch_against_exact_gaussian():
    """sample_rate = 1: per record, T Gaussian steps are exactly √T/z-GDP. The induction
    route's group ε must satisfy δ'_exact(ε/k)·Σ_{i<k} e^{iε/k} ≤ δ; the certificate (the
    minimum with the group-mixture route, here exactly the Gaussian μ·k) is ≥ the exact group
    value and within 1e-3 of it."""
    z, T, k, delta = 5.0, 1, 3, 1e-6
    r = certify(
        "dp_sgd_group", delta=delta, noise_multiplier=z, steps=T, sample_rate=1.0, forget_size=k
    )
    assert r.epsilon <= r.details["induction_epsilon"]
    with mp.workdps(DPS):
        assert r.epsilon <= float(mp_eps(delta, k * mp.sqrt(T) / z)) * (1 + 1e-3)
    e1 = r.details["induction_epsilon"] / k
    with mp.workdps(DPS):
        mu = mp.sqrt(T) / z
        factor = mp.fsum(mp.exp(i * mp.mpf(e1)) for i in range(k))
        assert mp_delta(e1, mu) * factor <= delta
        assert r.epsilon >= mp_eps(delta, k * mu)


# ---------------------------------------------------------------------------------------------
# the RDP route and the full-batch closed form


@pytest.mark.peer
@pytest.mark.parametrize(
    "q, z, steps, delta",
    [(0.01, 1.0, 10_000, 1e-5), (0.1, 2.0, 1000, 1e-10), (0.01, 1.0, 100, 1e-5)],
)
def test_rdp_route_not_looser_than_dp_accounting_rdp(q, z, steps, delta):
    """The route refines fractional orders with the exact series: no looser than
    dp-accounting's RDP accountant (which sums the fractional series on its own orders)."""
    dpa = pytest.importorskip("dp_accounting")
    from unlearn_theory.dp_sgd import _rdp_epsilon

    acc = dpa.rdp.RdpAccountant()
    acc.compose(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(z)), steps)
    ours = _rdp_epsilon(q, z, steps, delta)
    assert ours <= acc.get_epsilon(delta)
    # and it stays an upper bound: never below the (tighter) PLD's lower end
    from unlearn_theory.pld import PrivacyLossDistribution

    pld = PrivacyLossDistribution.from_subsampled_gaussian(sample_rate=q, noise_multiplier=z)
    assert ours >= pld.self_compose(steps).epsilon(delta, grid=1e-3).lower


def test_full_batch_calibration_is_the_exact_gaussian():
    """sample_rate = 1: z = √T/μ(ε, δ) up to rounding, feasible, and 1e-6 less noise is not."""
    eps, delta, steps = 1.0, 1e-6, 50
    z = dp_sgd_noise_multiplier(epsilon=eps, delta=delta, sample_rate=1.0, steps=steps)
    exact = math.sqrt(steps) / float(gaussian.mu(epsilon=eps, delta=delta))
    assert exact <= z <= exact * (1 + 1e-9)
    kw = dict(sample_rate=1.0, steps=steps, delta=delta)
    assert float(dp_sgd_epsilon(noise_multiplier=z, **kw)) <= eps
    assert float(dp_sgd_epsilon(noise_multiplier=z * (1 - 1e-6), **kw)) > eps
    b = dp_sgd_epsilon(noise_multiplier=z, **kw)
    assert b.details["route"] == "gaussian" and "exact Gaussian" in b.source
