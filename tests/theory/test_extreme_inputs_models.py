"""Regression tests for the extreme-input fuzz findings in langevin, per_instance and ridge.

Each test uses the fuzz report's repro inputs (IDs U6, N2–N8, C5–C7). The contract checked:
never NaN; an UPPER bound is never rounded down (a positive value never becomes 0); where a
value leaves the float64 range the answer is +inf (when that is a valid bound) or a library
error (InvalidParameterError naming the argument, or NumericalPrecisionError).
"""

from __future__ import annotations

import math
import warnings

import mpmath as mp
import numpy as np
import pytest

from unlearn_theory import langevin, per_instance, ridge
from unlearn_theory.errors import InvalidParameterError, NumericalPrecisionError

PROBLEM = dict(
    learning_rate=0.1, strong_convexity=1.0, smoothness=2.0, lipschitz=1.0, dataset_size=100
)


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


# ---------------------------------------------------------------------------------------------
# langevin


def test_u6_pabi_coefficient_never_underflows_to_zero():
    # true value 5e-401 (c = 1) and ~1e-400 (c < 1): below float64, so the smallest positive
    a = langevin.pabi_coefficient(1e-200, steps=1, contraction=1.0, variance=1.0)
    assert a > 0.0
    assert langevin.pabi_coefficient(1e-200, steps=3, contraction=0.5, variance=1.0) > 0.0
    assert langevin.pabi_coefficient(1.0, steps=10**6, contraction=0.5, variance=1.0) > 0.0


def test_pabi_coefficient_is_upper_against_mpmath_at_extreme_scales():
    for z, n, c, var in [(1e-150, 3, 0.5, 1e-10), (1e150, 7, 0.9, 1e290), (1e-100, 1, 1.0, 1e-5)]:
        a = langevin.pabi_coefficient(z, steps=n, contraction=c, variance=var)
        with mp.workdps(40):
            Z, C, V = mp.mpf(z), mp.mpf(c), mp.mpf(var)
            if c == 1.0:
                exact = Z**2 / (2 * V * n)
            else:
                exact = Z**2 * C ** (2 * n) * (1 - C**2) / (2 * V * (1 - C ** (2 * n)))
        assert mp.mpf(a) >= exact
        assert mp.mpf(a) <= exact * (1 + mp.mpf("1e-11"))


def test_n2_pabi_coefficient_inf_over_inf():
    a = langevin.pabi_coefficient(1e300, steps=1, contraction=1.0, variance=1.7e308)
    assert a == pytest.approx(0.5 * 1e300 * (1e300 / 1.7e308), rel=1e-10)  # Z²/(2v), was NaN


def test_c5_pabi_coefficient_subnormal_variance_overflows_to_inf():
    assert langevin.pabi_coefficient(1e-3, steps=1, contraction=0.5, variance=5e-324) == math.inf


def test_n3_temperature_and_noise_std_conversions():
    t = langevin.temperature_from_noise_std(noise_std=1e300, learning_rate=1.7e308)
    assert t == pytest.approx(0.5 * 1e300 * (1e300 / 1.7e308), rel=1e-12)  # was NaN
    with pytest.raises(InvalidParameterError, match="noise_std"):
        langevin.temperature_from_noise_std(noise_std=1e-300, learning_rate=1.7e308)
    with pytest.raises(InvalidParameterError, match="temperature"):
        langevin.noise_std_from_temperature(temperature=1.7e308, learning_rate=1.7e308)
    # was a silent 0.0: √(2·5e-324·5e-324) ≈ 7.07e-324 rounds to the smallest positive float
    assert langevin.noise_std_from_temperature(temperature=5e-324, learning_rate=5e-324) == 5e-324
    # σ² = (5e-324)²/2 underflows to 0: an error naming the argument, not a silent 0.0
    with pytest.raises(InvalidParameterError, match="noise_std"):
        langevin.temperature_from_noise_std(noise_std=5e-324, learning_rate=1.0)
    s = langevin.noise_std_from_temperature(temperature=1e-300, learning_rate=1e-8)
    assert s == pytest.approx(math.sqrt(2e-308), rel=1e-15)


@pytest.mark.parametrize("route", ["pabi", "lsi"])
def test_c5_certified_epsilon_with_tiny_noise_is_inf_not_a_crash(route):
    eps = float(
        langevin.certified_epsilon(delta=1e-5, steps=10, noise_std=1e-170, route=route, **PROBLEM)
    )
    assert eps == math.inf


def test_c5_certified_epsilon_huge_radius_paper_form():
    eps = float(
        langevin.certified_epsilon(
            delta=1e-5,
            steps=1,
            noise_std=1e-150,
            learning_rate=0.9999999999999999,
            strong_convexity=1e-8,
            smoothness=1.0,
            lipschitz=1e300,
            dataset_size=100,
            radius=1.7e308,
            form="paper",
        )
    )
    assert eps == math.inf


def test_c5_lsi_curve_with_subnormal_temperature_is_finite_upper():
    kw = dict(steps=10, route="lsi", training_epochs=3, **PROBLEM)
    small = langevin.unlearning_rdp(2.0, noise_std=1e-155, **kw)
    unit = langevin.unlearning_rdp(2.0, noise_std=1.0, **kw)
    # ρ scales as 1/noise_std²: exactly 1e310 times the unit-noise value (beyond float64)
    assert math.isfinite(small)
    assert math.log(small) - math.log(unit) >= 310 * math.log(10.0) - 1e-9


def test_c5_noise_std_for_steps_extreme_targets_recertify():
    for te in (3, None):
        kw = dict(steps=10, training_epochs=te, radius=1.0, **PROBLEM)
        s = langevin.noise_std_for_steps(epsilon=1.7e308, delta=5e-324, **kw)
        assert s > 0
        eps = float(langevin.certified_epsilon(delta=5e-324, noise_std=s, **kw))
        assert eps <= 1.7e308


def test_c5_deletion_odometer_with_tiny_noise_raises_library_error():
    odo = langevin.DeletionOdometer(epsilon=1.0, delta=1e-5, noise_std=1e-170, **PROBLEM)
    with pytest.raises(InvalidParameterError, match="steps"):
        odo.request(1, steps=10)


# ---------------------------------------------------------------------------------------------
# per_instance


def test_u6_noisy_gd_coefficient_never_underflows_to_zero():
    r = per_instance.noisy_gd_rdp(
        np.array([[1.0]]), learning_rate=1e-200, noise_std=1.0, dataset_size=1
    )
    assert r.linear_coefficient[0] > 0.0
    # tiny learning rate times huge gradient: an exact 0.5, not 0 (w_t alone underflows)
    r = per_instance.noisy_gd_rdp(
        np.array([[1e200, 0.0]]), learning_rate=1e-200, noise_std=1.0, dataset_size=1
    )
    assert r.linear_coefficient[0] == pytest.approx(0.5, rel=1e-11)
    assert r.linear_coefficient[0] >= 0.5


def test_n5_noisy_gd_rdp_no_nan_at_extreme_scales():
    r = per_instance.noisy_gd_rdp(
        np.array([[1.0]]), learning_rate=1.7e308, noise_std=1.7e308, dataset_size=1
    )
    assert r.rdp[0, 0] == pytest.approx(1.0, rel=1e-11)
    r = per_instance.noisy_gd_rdp(
        np.array([[0.0]]), learning_rate=5e-324, noise_std=5e-324, dataset_size=1
    )
    assert r.rdp[0, 0] == 0.0
    r = per_instance.noisy_gd_rdp(
        np.array([[1e300]]), learning_rate=1.0, noise_std=1e-300, dataset_size=1
    )
    assert r.linear_coefficient[0] == math.inf


def test_n4_subsampled_gaussian_step_rdp_tiny_noise_is_inf():
    out = per_instance.subsampled_gaussian_step_rdp(
        [2], sensitivity_ratio=1.0, sample_rate=0.5, noise_multiplier=1e-160
    )
    assert out[0] == math.inf
    out = per_instance.subsampled_gaussian_step_rdp(
        [2], sensitivity_ratio=0.0, sample_rate=5e-324, noise_multiplier=5e-324
    )
    assert out[0] == 0.0
    out = per_instance.subsampled_gaussian_step_rdp(
        [2, 3], sensitivity_ratio=1.0, sample_rate=1.0, noise_multiplier=1e-154
    )
    assert not np.any(np.isnan(out)) and out[1] == math.inf


def test_c6_subsampled_gaussian_rdp_tiny_noise_or_clip():
    r = per_instance.subsampled_gaussian_rdp(
        np.array([[1.0], [0.0]]),
        clip_gradient=1.0,
        sample_rate=0.5,
        noise_multiplier=1e-160,
        grid_size=5,
    )
    assert np.all(r.rdp[0] == math.inf) and np.all(r.rdp[1] == 0.0)
    r = per_instance.subsampled_gaussian_rdp(
        np.array([[1.0]]), clip_gradient=5e-324, sample_rate=0.5, noise_multiplier=1e-3, grid_size=5
    )
    exact = per_instance.subsampled_gaussian_step_rdp(
        r.orders, sensitivity_ratio=1.0, sample_rate=0.5, noise_multiplier=1e-3
    )
    assert np.all(r.rdp[0] >= exact * (1 - 1e-12))
    # q = 1 with a grid whose top nodes overflow: +inf only where a step reaches them
    r = per_instance.subsampled_gaussian_rdp(
        np.array([[1.0], [1e-5], [0.0]]),
        clip_gradient=1.0,
        sample_rate=1.0,
        noise_multiplier=1e-154,
        grid_size=50,
        orders=[2, 3, 64],
    )
    assert not np.any(np.isnan(r.rdp))
    assert r.rdp[0, 1] == math.inf and np.isfinite(r.rdp[1, 0]) and np.all(r.rdp[2] == 0.0)


# ---------------------------------------------------------------------------------------------
# ridge


def test_n6_renyi_1d_huge_shift_and_variance_ratio():
    val = ridge.renyi_1d(1.5, shift=1.7e308, variance_ratio=1.7e308)
    assert math.isfinite(val) and val == pytest.approx(0.5 * 1.7e308, rel=1e-12)
    # α·x overflows but (α/2)w²/(1 + αx) = ½w²/(1/α + x) does not: ≈ ½·1e10/1e10
    assert ridge.renyi_1d(1e300, shift=1e5, variance_ratio=1e10) > 0.5


def test_n7_gaussian_renyi_whitening_overflow():
    out = ridge.gaussian_renyi(
        [2.0], np.zeros(2), np.diag([1e-150, 1.0]), np.array([1e300, 0.0]), np.diag([2e-150, 1.0])
    )
    assert out[0] == math.inf
    out = ridge.gaussian_renyi(
        [2.0], np.array([-1.7e308, 0.0]), np.eye(2), np.array([1.7e308, 0.0]), np.diag([2.0, 1.0])
    )
    assert out[0] == math.inf
    with pytest.raises(NumericalPrecisionError):
        ridge.gaussian_renyi(
            [2.0], np.zeros(2), np.diag([1e-300, 1.0]), np.zeros(2), np.diag([1e300, 1.0])
        )
    hs = ridge.gaussian_hockey_stick(
        1.0, np.zeros(2), np.diag([1e-150, 1.0]), np.array([1e300, 0.0]), np.diag([2e-150, 1.0])
    )
    assert hs.value == 1.0 and hs.kind == "upper"


def test_n8_leave_one_out_overflow_names_the_data():
    with pytest.raises(InvalidParameterError, match="features"):
        ridge.leave_one_out([[1e200]], [-1e150], regularization=1.0)
    with pytest.raises(InvalidParameterError, match="targets"):
        ridge.leave_one_out([[1e100]], [-1e250], regularization=1.0)


def test_c7_hockey_stick_1d_extreme_ratios():
    # var1/var0 underflows to 0: δ ≥ 1 − 1e-17, so 1.0 is δ rounded up
    assert ridge.hockey_stick_1d(0.0, mean0=0.0, var0=1.7e308, mean1=0.0, var1=5e-324) == 1.0
    # mpmath overflowed here: shift of 1e150 standard deviations
    assert ridge.hockey_stick_1d(0.0, mean0=0.0, var0=1.0, mean1=1e150, var1=1 + 1e-15) == 1.0
    assert ridge.hockey_stick_1d(1.0, mean0=-1e308, var0=1.0, mean1=1e308, var1=2.0) == 1.0
    # ratio overflows to inf and ε is too large for the δ ≈ 1 certificate: a clear error
    with pytest.raises(NumericalPrecisionError):
        ridge.hockey_stick_1d(1000.0, mean0=0.0, var0=1e-300, mean1=0.0, var1=1e300)
