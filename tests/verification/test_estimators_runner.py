"""Estimators: coverage >= nominal over seeds and convergence to the exact value; the runner is
independent of the executor (process pool, Dask) and has a torch path; bad input is refused."""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import mpmath as mp
import numpy as np
import pytest

from unlearn_theory import gaussian
from unlearn_theory.errors import InvalidParameterError, NumericalPrecisionError
from verification import audit, estimators, runner, toys

# ------------------------------------------------------------------------------------------
# coverage (fast versions; the long studies are marked slow)


def _coverage_threshold(seeds, n, protocol):
    toy = toys.GaussianShift(1.5)
    delta, alpha = 1e-2, 0.1
    exact = toy.epsilon(delta)
    grid = np.linspace(-1, 4, 11)
    fails = 0
    for k in range(seeds):
        x0, x1 = toy.sample(n, np.random.default_rng(k))
        b = estimators.threshold_epsilon_lower(
            x0,
            x1,
            delta=delta,
            thresholds=grid,
            confidence=1 - alpha,
            protocol=protocol,
            rng=np.random.default_rng(10_000 + k),
        )
        assert b.kind == "lower"
        fails += b.value > exact
    return fails


def _binom_ok(fails, seeds, alpha):
    # P(Bin(seeds, alpha) >= fails) must not be tiny: coverage >= nominal is not rejected
    from scipy import stats

    return stats.binom.sf(fails - 1, seeds, alpha) > 1e-3


@pytest.mark.parametrize("protocol", ["bonferroni", "split"])
def test_threshold_coverage_fast(protocol):
    seeds = 30
    assert _binom_ok(_coverage_threshold(seeds, 5_000, protocol), seeds, 0.1)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["bonferroni", "split"])
def test_threshold_coverage_long(protocol):
    seeds = 400
    assert _binom_ok(_coverage_threshold(seeds, 20_000, protocol), seeds, 0.1)


def test_same_data_max_is_not_a_valid_bound():
    """Maximising over thresholds on the evaluation data overshoots the exact epsilon often:
    that is why it is only offered as kind="estimate"."""
    toy = toys.GaussianShift(1.0)
    exact = toy.epsilon(1e-2)
    over = 0
    for k in range(20):
        x0, x1 = toy.sample(2_000, np.random.default_rng(k))
        b = estimators.threshold_estimate(x0, x1, delta=1e-2)
        assert b.kind == "estimate"
        over += b.value > exact
    assert over >= 10  # >= 50% miscoverage, against <= 10% for the valid protocols


def _coverage_gdp(seeds, n):
    toy = toys.GaussianShift(1.0)
    fails = 0
    for k in range(seeds):
        x0, x1 = toy.sample(n, np.random.default_rng(k))
        fails += estimators.gdp_mu_lower(x0, x1, threshold=0.5, confidence=0.9).value > 1.0
    return fails


def test_gdp_coverage_fast():
    assert _binom_ok(_coverage_gdp(40, 5_000), 40, 0.1)


@pytest.mark.slow
def test_gdp_coverage_long():
    assert _binom_ok(_coverage_gdp(500, 20_000), 500, 0.1)


def _coverage_delta_lower(seeds, n):
    toy = toys.SubsampledGaussian(0.5, 0.8)
    exact = max(toy.delta(0.3, "PQ"), toy.delta(0.3, "QP"))
    fails = 0
    grid = np.linspace(-1, 2, 7)
    for k in range(seeds):
        x0, x1 = toy.sample(n, np.random.default_rng(k))
        b = estimators.threshold_delta_lower(x0, x1, epsilon=0.3, thresholds=grid, confidence=0.9)
        fails += b.value > exact
    return fails


def test_delta_lower_coverage_fast():
    assert _binom_ok(_coverage_delta_lower(30, 5_000), 30, 0.1)


@pytest.mark.slow
def test_delta_lower_coverage_long():
    assert _binom_ok(_coverage_delta_lower(400, 20_000), 400, 0.1)


def _coverage_plrv(seeds, n, tilt):
    fails = 0
    if tilt:
        mu, eps = 1.0, 4.0
        exact = float(gaussian.delta(eps, mu=mu))
    else:
        toy = toys.GaussianPair(0.0, 1.0, 0.5, 1.5)
        exact = toy.delta(0.3, "QP")
    for k in range(seeds):
        rng = np.random.default_rng(k)
        if tilt:
            lo, hi, _ = estimators.gaussian_tilted_plrv(mu, eps, n, rng, confidence=0.9)
        else:
            lo, hi, _ = estimators.plrv_delta_mc(toy, 0.3, n, rng, direction="QP", confidence=0.9)
        fails += not (lo.value <= exact <= hi.value)
    return fails


@pytest.mark.parametrize("tilt", [True, False])
def test_plrv_coverage_fast(tilt):
    assert _binom_ok(_coverage_plrv(30, 10_000, tilt), 30, 0.1)


@pytest.mark.slow
@pytest.mark.parametrize("tilt", [True, False])
def test_plrv_coverage_long(tilt):
    assert _binom_ok(_coverage_plrv(400, 20_000, tilt), 400, 0.1)


def test_renyi_bounded_loss_coverage_and_convergence():
    toy = toys.Laplace(1.0)
    exact = float(toy.renyi(3.0))
    fails = 0
    for k in range(30):
        _, x1 = toy.sample(5_000, np.random.default_rng(k))
        lo, hi, _ = estimators.renyi_bounded_loss(
            toy.privacy_loss(x1), order=3.0, loss_bound=toy.loss_bound, confidence=0.9
        )
        fails += not (lo.value <= exact <= hi.value)
    assert _binom_ok(fails, 30, 0.1)
    _, x1 = toy.sample(1_000_000, np.random.default_rng(99))
    lo, hi, _ = estimators.renyi_bounded_loss(
        toy.privacy_loss(x1), order=3.0, loss_bound=toy.loss_bound
    )
    assert lo.value <= exact <= hi.value and hi.value - lo.value < 0.01


def test_renyi_thermodynamic_estimate_converges_both_directions():
    pair = toys.GaussianPair(0.0, 1.0, 0.5, 1.5)
    for d in ("PQ", "QP"):
        b, se = estimators.renyi_thermodynamic(
            pair, order=2.0, n=50_000, rng=np.random.default_rng(1), direction=d
        )
        assert b.kind == "estimate"
        assert abs(b.value - pair.renyi(2.0, d)) < 5 * se + 1e-3
    with pytest.raises(NumericalPrecisionError):  # r_s not normalisable: D_3 = +inf
        estimators.renyi_thermodynamic(pair, order=3.5, n=100, rng=np.random.default_rng(0))


def test_estimators_converge_to_exact():
    toy = toys.GaussianShift(1.5)
    delta = 1e-2
    exact = toy.epsilon(delta)
    big = runner.run_audit(toy, samples=4_000_000, delta=delta, grid=np.linspace(-1, 4, 51))
    assert exact - 0.15 < big.epsilon_lower <= exact
    mid = runner.run_audit(toy, samples=200_000, delta=delta, grid=np.linspace(-1, 4, 51))
    assert mid.epsilon_lower < big.epsilon_lower
    r = runner.run_delta_audit(toys.GaussianShift(1.0), epsilon=4.0, samples=2_000_000)
    ex = float(gaussian.delta(4.0, mu=1.0))
    assert r.delta_lower <= ex <= r.delta_upper and r.delta_upper - r.delta_lower < 0.05 * ex


# ------------------------------------------------------------------------------------------
# runner: executors, torch path, torch loops as samplers


_KW = dict(samples=240_000, delta=1e-3, seed=7, chunk_size=40_000, grid=np.linspace(0, 4, 9))


def test_runner_process_pool_matches_serial():
    toy = toys.GaussianShift(1.0)
    a = runner.run_audit(toy, **_KW)
    with ProcessPoolExecutor(2) as ex:
        b = runner.run_audit(toy, executor=ex, **_KW)
        c = runner.run_delta_audit(
            toy, epsilon=1.0, samples=200_000, chunk_size=50_000, executor=ex
        )
    assert a.counts == b.counts and a.epsilon_lower == b.epsilon_lower
    d = runner.run_delta_audit(toy, epsilon=1.0, samples=200_000, chunk_size=50_000)
    assert c.delta_estimate == d.delta_estimate


def test_runner_dask_local_cluster():
    distributed = pytest.importorskip("dask.distributed")
    toy = toys.GaussianShift(1.0)
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2) as cl:
        with distributed.Client(cl) as client:
            b = runner.run_audit(toy, executor=client.get_executor(), **_KW)
    assert b.counts == runner.run_audit(toy, **_KW).counts


def _devices():
    out = ["cpu"]
    if runner.cuda_available():
        out.append("cuda")
    return out


@pytest.mark.parametrize("device", _devices())
def test_torch_sampling_path(device):
    pytest.importorskip("torch")
    toy = toys.GaussianShift(1.0)
    a = runner.run_audit(toy, device=device, **_KW)
    b = runner.run_audit(toy, device=device, **dict(_KW, chunk_size=60_000))
    assert a.epsilon_lower <= toy.epsilon(1e-3)
    assert b.epsilon_lower <= toy.epsilon(1e-3)
    ch = audit.MethodChains("gradient_clipping", 1.0, 5, weight_decay=1.0, loss="saturating")
    r = audit.audit_method("gradient_clipping", samples=200_000, device=device, chains=ch)
    assert r["consistent"] and r["epsilon_lower"] <= r["epsilon_exact"] + 1e-9
    ch = audit.MethodChains(
        "model_clipping", 1.0, 5, learning_rate=1.0, clip_gradient=2.0, loss="repel"
    )
    r = audit.audit_method("model_clipping", samples=100_000, device=device, chains=ch)
    assert r["consistent"] and r["epsilon_lower"] <= r["epsilon_exact"]


def _torch_gradient_clipping_loop(world, n, generator, device):
    """A small torch 'training loop': 8 steps of clipped noisy GD on a 2-D quadratic from the
    worst-case starts; n runs in parallel. Module level so that it pickles."""
    import torch

    c0, c1, lr, wd, s = 1.0, 1.0, 0.2, 0.5, 0.8
    x = torch.zeros(n, 2, dtype=torch.float64, device=device)
    x[:, 0] = c0 if world == 1 else -c0
    target = torch.tensor([0.3, -0.2], dtype=torch.float64, device=device)
    for _ in range(8):
        g = x - target
        nrm = g.norm(dim=1, keepdim=True).clamp_min(1e-12)
        g = g * torch.clamp(c1 / nrm, max=1.0)
        x = (1 - lr * wd) * x - lr * g
        x = x + s * torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
    return x


def test_torch_loop_plugs_in_as_sampler():
    pytest.importorskip("torch")
    from unlearn_theory import certify

    smp = runner.TorchLoopSampler(_torch_gradient_clipping_loop)
    assert isinstance(smp, runner.Sampler)
    res = runner.run_audit(smp, samples=40_000, delta=1e-3, chunk_size=20_000)
    cert = certify(
        "gradient_clipping",
        delta=1e-3,
        noise_std=0.8,
        steps=8,
        clip_initial=1.0,
        clip_gradient=1.0,
        learning_rate=0.2,
        weight_decay=0.5,
    )
    assert res.status == "ok" and res.epsilon_lower <= float(cert)
    # torch's thread pool does not survive fork(): use threads (or a spawn/forkserver pool)
    with ThreadPoolExecutor(2) as ex:
        again = runner.run_audit(
            smp, samples=40_000, delta=1e-3, chunk_size=20_000, executor=ex, device="cpu"
        )
    assert again.epsilon_lower <= float(cert)
    serial = runner.run_audit(smp, samples=40_000, delta=1e-3, chunk_size=20_000, device="cpu")
    assert serial.counts == again.counts


# ------------------------------------------------------------------------------------------
# bad input and insufficient precision


class _NaNSampler:
    def sample(self, n, rng):
        x = rng.standard_normal(n)
        x[n // 2] = np.nan
        return x, x.copy()

    def privacy_loss(self, x):
        return np.asarray(x)


@pytest.mark.parametrize(
    "kw",
    [
        dict(samples=0),
        dict(samples=-5),
        dict(confidence=1.0),
        dict(confidence=0.0),
        dict(confidence=float("nan")),
        dict(delta=0.0),
        dict(delta=1.5),
        dict(chunk_size=0),
    ],
)
def test_run_audit_bad_input(kw):
    args = dict(samples=1000, delta=1e-3, confidence=0.95, grid=[0.0])
    args.update(kw)
    with pytest.raises(InvalidParameterError):
        runner.run_audit(toys.GaussianShift(1.0), **args)


@pytest.mark.parametrize(
    "kw", [dict(samples=0), dict(confidence=2.0), dict(epsilon=-1.0), dict(direction="XY")]
)
def test_run_delta_audit_bad_input(kw):
    args = dict(samples=1000, epsilon=1.0)
    args.update(kw)
    with pytest.raises(InvalidParameterError):
        runner.run_delta_audit(toys.GaussianShift(1.0), **args)


def test_nan_samplers_are_refused():
    with pytest.raises(InvalidParameterError, match="NaN"):
        runner.run_audit(_NaNSampler(), samples=100, delta=1e-3, grid=[0.0])
    with pytest.raises(InvalidParameterError, match="NaN"):
        runner.run_delta_audit(_NaNSampler(), epsilon=0.5, samples=100, tilt=False)
    with pytest.raises(InvalidParameterError):
        estimators.threshold_epsilon_lower([np.nan, 1.0], [0.0, 1.0], delta=1e-3, thresholds=[0])


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, 1.5])
@pytest.mark.parametrize("name", ["confidence", "alpha"])
def test_estimator_confidence_out_of_range(level, name):
    x = np.linspace(0, 1, 10)
    kw = {name: level}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(InvalidParameterError, match=name):
            estimators.threshold_epsilon_lower(x, x, delta=1e-3, thresholds=[0.5], **kw)
        with pytest.raises(InvalidParameterError, match=name):
            estimators.gdp_mu_lower(x, x, threshold=0.5, **kw)
        with pytest.raises(InvalidParameterError, match=name):
            estimators.plrv_delta(x, epsilon=0.1, **kw)
        with pytest.raises(InvalidParameterError, match=name):
            estimators.threshold_delta_lower(x, x, epsilon=0.1, thresholds=[0.5], **kw)


def test_insufficient_precision_is_flagged_not_reported():
    r = runner.run_audit(
        toys.GaussianShift(3.0), samples=100, delta=1e-6, grid=[1.5], min_epsilon=5.0
    )
    assert r.epsilon_lower is None and r.status == "insufficient_precision"
    d = runner.run_delta_audit(
        toys.Laplace(1.0), epsilon=0.5, samples=10_000, max_relative_width=0.01
    )
    assert d.delta_lower is None and d.status == "insufficient_precision" and d.message
    out = audit.audit_method(
        "output_perturbation", samples=1_000, noise_std=1.0, delta=1e-6, min_epsilon=3.0
    )
    assert out["epsilon_lower"] is None and out["status"] == "insufficient_precision"
    assert math.isfinite(out["epsilon_certified"])


def test_profile_curves_from_one_audit_are_jointly_valid():
    toy = toys.GaussianShift(2.0)
    res = runner.run_audit(toy, samples=500_000, delta=1e-3, grid=np.linspace(-2, 4, 25))
    deltas = np.array([1e-1, 1e-2, 1e-3, 1e-4])
    lower = runner.epsilon_lower_curve(res, deltas)
    exact = np.array([toy.epsilon(d) for d in deltas])
    assert np.all(lower <= exact) and np.all(np.diff(lower) >= 0) and lower[0] > 0
    eps = np.array([0.0, 1.0, 3.0])
    dl = runner.delta_lower_curve(res, eps)
    assert np.all(dl <= toy.delta(eps)) and dl[0] > 0.5
    out = audit.audit_method("output_perturbation", samples=100_000, noise_std=2.0)
    c = audit.profile_curves(out)
    assert np.all(c["lower"] <= c["exact"] + 1e-12)
    assert np.allclose(c["exact"], c["certified"], rtol=1e-9)


# ------------------------------------------------------------------------------------------
# extreme inputs: degenerate and overflowing loss ranges, threshold and δ validation, huge ε
# (never NaN; empirical bounds on the right side of mpmath; RuntimeWarnings are errors here)


@pytest.fixture
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


def _renyi_interval_mpmath(losses, order, b, alpha=0.05):
    """The Hoeffding interval of renyi_bounded_loss evaluated at 60 digits (reference)."""
    with mp.workdps(60):
        k, B = mp.mpf(order) - 1, mp.mpf(b)
        lo_v, hi_v = mp.exp(-k * B), mp.exp(k * B)
        y = [(mp.exp(k * mp.mpf(x)) - lo_v) / (hi_v - lo_v) for x in losses]
        m = mp.fsum(y) / len(y)
        half = mp.sqrt(mp.log(2 / mp.mpf(alpha)) / (2 * len(y)))

        def d(u):
            return mp.log(lo_v + (hi_v - lo_v) * min(max(u, 0), 1)) / k

        return max(d(m - half), 0), max(d(m + half), 0)


@pytest.mark.usefixtures("_warnings_are_errors")
def test_u4_renyi_bounded_loss_degenerate_range_is_sound():
    lo, hi, est = estimators.renyi_bounded_loss(
        np.array([1e-300, -1e-300]), order=1.5, loss_bound=1e-300
    )
    # was hi = -inf (0/0 when e^{-kb} == e^{kb} in float64)
    assert all(math.isfinite(x.value) for x in (lo, hi, est))
    assert 0.0 <= lo.value <= hi.value
    # the exact interval for kb → 0 is b·(2u − 1) with u = min(1/2 + half, 1) = 1: hi ≥ b
    assert hi.value >= 1e-300


@pytest.mark.usefixtures("_warnings_are_errors")
@pytest.mark.parametrize(
    "losses, order, b",
    [
        ([0.3, -0.2, 0.9, 0.1], 1.0001, 1.0),
        ([0.3, -0.2, 0.9, 0.1, 0.5, 0.5], 3.0, 1.0),
        ([1e-8, -2e-8, 3e-8], 2.0, 5e-8),
        ([10.0, -40.0, 5.0], 9.0, 50.0),
    ],
)
def test_renyi_bounded_loss_brackets_mpmath_reference(losses, order, b):
    lo, hi, _ = estimators.renyi_bounded_loss(losses, order=order, loss_bound=b)
    ref_lo, ref_hi = _renyi_interval_mpmath(losses, order, b)
    assert mp.mpf(hi.value) >= ref_hi
    assert mp.mpf(lo.value) <= ref_lo


@pytest.mark.usefixtures("_warnings_are_errors")
def test_c8_renyi_bounded_loss_overflow_near_order_one():
    # exp((order − 1)·b) overflowed; now the log-space map gives a finite sound interval
    lo, hi, est = estimators.renyi_bounded_loss(
        [0.0, 0.0], order=1.000000000000001, loss_bound=1.7e308
    )
    assert lo.value == 0.0 and est.value == 0.0
    assert math.isfinite(hi.value) and hi.value > 1e307
    lo, hi, _ = estimators.renyi_bounded_loss([1.0, 0.5, 0.2], order=1e300, loss_bound=1.0)
    assert 0.0 <= lo.value <= hi.value and hi.value >= 1.0


@pytest.mark.usefixtures("_warnings_are_errors")
def test_n10_threshold_estimate_validates_delta():
    for bad in (float("nan"), -1.0, 1.5, 0.0):
        with pytest.raises(InvalidParameterError, match="delta"):
            estimators.threshold_estimate([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], delta=bad)
    b = estimators.threshold_estimate([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], delta=0.1)
    assert math.isfinite(b.value) and b.kind == "estimate"


@pytest.mark.usefixtures("_warnings_are_errors")
def test_c8_empty_or_bad_thresholds_name_the_argument():
    with pytest.raises(InvalidParameterError, match="thresholds"):
        estimators.threshold_epsilon_lower([0.0], [1.0], delta=0.1, thresholds=[])
    with pytest.raises(InvalidParameterError, match="thresholds"):
        estimators.threshold_epsilon_lower(
            [0.0, 1.0],
            [1.0, 2.0],
            delta=0.1,
            thresholds=[],
            protocol="split",
            rng=np.random.default_rng(0),
        )
    with pytest.raises(InvalidParameterError, match="thresholds"):
        estimators.threshold_delta_lower([0.0], [1.0], epsilon=0.5, thresholds=[])
    with pytest.raises(InvalidParameterError, match="thresholds"):
        estimators.threshold_delta_lower([0.0], [1.0], epsilon=0.5, thresholds=[np.nan])
    with pytest.raises(InvalidParameterError, match="threshold"):
        estimators.gdp_mu_lower([0.0], [1.0], threshold=float("nan"))


@pytest.mark.usefixtures("_warnings_are_errors")
def test_c8_threshold_delta_lower_huge_epsilon():
    b = estimators.threshold_delta_lower([0.0], [1.0], epsilon=710.0, thresholds=[0.5])
    assert b.value == 0.0 and b.kind == "lower"
    # unchanged in the ordinary range
    x0, x1 = [0.0] * 100, [1.0] * 100
    lo = estimators.threshold_delta_lower(x0, x1, epsilon=0.5, thresholds=[0.5])
    assert 0.85 < lo.value < 1.0
