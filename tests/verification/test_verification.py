"""Verification suite tests: toys exact, estimator coverage/convergence, runner determinism,
audits catch injected bugs, bad input."""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from scipy import integrate, stats

from unlearn_theory import gaussian
from unlearn_theory.errors import InvalidParameterError
from verification import audit, confidence, estimators, runner, toys


def _hockey_quad(toy, eps, direction):
    """E_{e^eps}(P1||P0) (PQ) by quadrature of the densities (independent of the closed forms)."""
    q, s = toy.sample_rate, toy.noise_std
    p1 = lambda x: (1 - q) * stats.norm.pdf(x, 0, s) + q * stats.norm.pdf(x, 1, s)  # noqa: E731
    p0 = lambda x: stats.norm.pdf(x, 0, s)  # noqa: E731
    a, b = (p1, p0) if direction == "PQ" else (p0, p1)
    f = lambda x: max(a(x) - math.exp(eps) * b(x), 0.0)  # noqa: E731
    return integrate.quad(f, -30 * s, 1 + 30 * s, limit=400, points=[0.0, 0.5, 1.0])[0]


@pytest.mark.parametrize("direction", ["PQ", "QP"])
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5, 1.5])
def test_subsampled_gaussian_closed_form_matches_quadrature(direction, eps):
    toy = toys.SubsampledGaussian(0.3, 0.7)
    assert toy.delta(eps, direction=direction) == pytest.approx(
        _hockey_quad(toy, eps, direction), abs=1e-9
    )


def test_laplace_profile_and_renyi_limits():
    toy = toys.Laplace(1.0)
    assert toy.delta(0.0) == pytest.approx(1 - math.exp(-0.5))
    assert toy.delta(1.0) == 0.0
    # D_alpha -> eps0 as alpha -> infinity, and is below eps0
    assert toy.renyi([200.0])[0] < 1.0
    assert toy.renyi([200.0])[0] > 0.95


def test_quadratic_gd_is_gaussian_with_mu():
    toy = toys.QuadraticNoisyGD(0.1, 0.5, 0.3, 5, 3)
    x0, x1 = toy.sample(200_000, np.random.default_rng(0))
    assert np.std(x0) == pytest.approx(1.0, abs=0.01)
    assert np.mean(x1) - np.mean(x0) == pytest.approx(toy.mu, abs=0.015)


def test_clopper_pearson_edges():
    assert confidence.clopper_pearson_upper(10, 10, alpha=0.05) == 1.0
    assert confidence.clopper_pearson_lower(0, 10, alpha=0.05) == 0.0
    assert confidence.clopper_pearson_upper(0, 10, alpha=0.05) == pytest.approx(
        1 - 0.05 ** (1 / 10)
    )


def test_threshold_bonferroni_coverage_and_convergence():
    toy = toys.GaussianShift(1.5)
    delta = 1e-2
    exact = toys.exact_epsilon(toy, delta)
    grid = np.linspace(-1, 4, 11)
    fails = 0
    for k in range(40):
        x0, x1 = toy.sample(20_000, np.random.default_rng(k))
        b = estimators.threshold_epsilon_lower(x0, x1, delta=delta, thresholds=grid, confidence=0.9)
        assert b.kind == "lower"
        fails += b.value > exact
    assert fails <= 4 + 5  # nominal 10% of 40, with slack for binomial noise
    big = runner.run_audit(toy, samples=4_000_000, delta=delta, grid=np.linspace(-1, 4, 51))
    assert exact - 0.15 < big.epsilon_lower <= exact


def test_split_protocol_and_estimate_labels():
    toy = toys.GaussianShift(1.0)
    x0, x1 = toy.sample(50_000, np.random.default_rng(3))
    b = estimators.threshold_epsilon_lower(
        x0, x1, delta=1e-2, protocol="split", rng=np.random.default_rng(1)
    )
    assert 0 <= b.value <= toys.exact_epsilon(toy, 1e-2)
    assert estimators.threshold_estimate(x0, x1, delta=1e-2).kind == "estimate"


def test_delta_lower_and_gdp_route():
    toy = toys.GaussianShift(1.0)
    x0, x1 = toy.sample(200_000, np.random.default_rng(5))
    d = estimators.threshold_delta_lower(x0, x1, epsilon=0.5, thresholds=np.linspace(-1, 2, 7))
    assert 0 < d.value <= gaussian.delta(0.5, mu=1.0)
    mu = estimators.gdp_mu_lower(x0, x1, threshold=0.5).value
    assert 0.95 < mu <= 1.0 + 1e-9
    with pytest.raises(InvalidParameterError):
        estimators.gdp_epsilon_lower(x0, x1, threshold=0.5, delta=1e-3)
    e = estimators.gdp_epsilon_lower(x0, x1, threshold=0.5, delta=1e-3, gaussian_shift=True)
    assert e.value <= float(gaussian.epsilon(1e-3, mu=1.0))


def test_tilted_plrv_covers_small_delta():
    mu, eps = 1.0, 4.0
    exact = float(gaussian.delta(eps, mu=mu))
    miss = 0
    for k in range(30):
        lo, hi, est = estimators.gaussian_tilted_plrv(
            mu, eps, 20_000, np.random.default_rng(k), confidence=0.9
        )
        miss += not (lo.value <= exact <= hi.value)
    assert miss <= 3 + 4
    lo, hi, _ = estimators.gaussian_tilted_plrv(mu, eps, 2_000_000, np.random.default_rng(99))
    assert hi.value - lo.value < 0.05 * exact


def test_runner_independent_of_workers():
    toy = toys.GaussianShift(1.0)
    kw = dict(samples=300_000, delta=1e-3, seed=7, chunk_size=50_000, grid=np.linspace(0, 4, 9))
    a = runner.run_audit(toy, **kw)
    with ThreadPoolExecutor(3) as ex:
        b = runner.run_audit(toy, executor=ex, **kw)
    assert a.counts == b.counts and a.epsilon_lower == b.epsilon_lower


def test_runner_dask_executor_optional():
    distributed = pytest.importorskip("distributed")
    toy = toys.GaussianShift(1.0)
    kw = dict(samples=100_000, delta=1e-3, seed=7, chunk_size=25_000, grid=np.linspace(0, 4, 9))
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2) as client:
        b = runner.run_audit(toy, executor=client.get_executor(), **kw)
    assert b.counts == runner.run_audit(toy, **kw).counts


class _NaNSampler:
    def sample(self, n, rng):
        return np.full(n, np.nan), np.zeros(n)


@pytest.mark.parametrize(
    "kw",
    [
        dict(samples=0),
        dict(samples=-5),
        dict(confidence=1.0),
        dict(confidence=0.0),
        dict(delta=0.0),
        dict(delta=1.5),
    ],
)
def test_bad_input(kw):
    args = dict(samples=1000, delta=1e-3, confidence=0.95, grid=[0.0])
    args.update(kw)
    with pytest.raises(InvalidParameterError):
        runner.run_audit(toys.GaussianShift(1.0), **args)


def test_nan_sampler_and_insufficient_precision():
    with pytest.raises(InvalidParameterError):
        runner.run_audit(_NaNSampler(), samples=100, delta=1e-3, grid=[0.0])
    r = runner.run_audit(
        toys.GaussianShift(3.0), samples=100, delta=1e-6, grid=[1.5], min_epsilon=5.0
    )
    assert r.epsilon_lower is None and r.status == "insufficient_precision"


_AUDIT_CASES = {
    "gradient_clipping": dict(noise_std=1.0, steps=5, weight_decay=1.0),
    "model_clipping": dict(noise_std=1.0, steps=6, learning_rate=1.0, clip_gradient=2.0),
    "blockwise_gradient_clipping": dict(noise_std=1.0, steps=6, blocks=3, weight_decay=1.0),
    "output_perturbation": dict(noise_std=1.0, steps=0),
}


# "saturating" uses two different gradient oracles for the two chains; the model-clipping
# simulator runs one shared oracle (its bound needs no gradient assumption), so that pair is
# not a case of this audit.
_AUDIT_PAIRS = [
    (method, loss)
    for method in _AUDIT_CASES
    for loss in ("quadratic", "logistic", "sign", "repel", "saturating")
    if not (loss == "saturating" and method == "model_clipping")
]


@pytest.mark.parametrize("method,loss", _AUDIT_PAIRS)
def test_audits_consistent(method, loss):
    r = audit.audit_method(method, samples=200_000, loss=loss, **_AUDIT_CASES[method])
    assert r["status"] == "ok" and r["epsilon_lower_kind"] == "lower"
    assert r["consistent"] and r["epsilon_lower"] <= r["epsilon_certified"]
    if r["epsilon_exact"] is not None:
        assert r["epsilon_lower"] <= r["epsilon_exact"] <= r["epsilon_certified"] * (1 + 1e-9)


def test_audit_dp_sgd_group_consistent_with_exact():
    r = audit.audit_method(  # same configuration as the tightness row (certify memoised)
        "dp_sgd_group",
        delta=1e-5,
        samples=200_000,
        noise_std=1.0,
        steps=1,
        sample_rate=0.1,
        forget_size=2,
        loss="zero",
    )
    assert r["consistent"] and r["epsilon_lower"] <= r["epsilon_exact"] <= r["epsilon_certified"]


@pytest.mark.parametrize(
    "method,loss",
    [
        ("gradient_clipping", "saturating"),
        ("gradient_clipping", "repel"),
        ("model_clipping", "repel"),
        ("output_perturbation", "sign"),
    ],
)
def test_audit_catches_wrong_noise_scale(method, loss):
    r = audit.audit_method(
        method, samples=200_000, loss=loss, fault="half_noise", **_AUDIT_CASES[method]
    )
    assert not r["consistent"] and r["epsilon_lower"] > r["epsilon_certified"]


@pytest.mark.parametrize("loss", ["repel", "sign"])
def test_audit_catches_reused_noise(loss):
    kw = dict(samples=200_000, loss=loss, **_AUDIT_CASES["model_clipping"])
    assert audit.audit_method("model_clipping", **kw)["consistent"]
    bad = audit.audit_method("model_clipping", fault="reuse_noise", **kw)
    assert not bad["consistent"] and bad["epsilon_lower"] > bad["epsilon_certified"]


def test_torch_and_numpy_simulators_agree_in_law():
    pytest.importorskip("torch")
    ch = audit.MethodChains(
        "model_clipping", 0.8, 4, learning_rate=1.0, clip_gradient=2.0, loss="repel"
    )
    a0, a1 = ch.sample(100_000, np.random.default_rng(0))
    b0, b1 = ch.sample_torch(100_000, np.random.SeedSequence(1), "cpu")
    assert stats.ks_2samp(a0, b0).pvalue > 1e-4 and stats.ks_2samp(a1, b1).pvalue > 1e-4
    ch = audit.MethodChains("dp_sgd_group", 1.0, 3, sample_rate=0.3, forget_size=2, loss="sign")
    a0, a1 = ch.sample(100_000, np.random.default_rng(0))
    b0, b1 = ch.sample_torch(100_000, np.random.SeedSequence(1), "cpu")
    assert stats.ks_2samp(a0, b0).pvalue > 1e-4 and stats.ks_2samp(a1, b1).pvalue > 1e-4


def test_report_json_table_and_plot(tmp_path):
    from verification import report

    r = audit.audit_method("output_perturbation", samples=20_000, noise_std=2.0)
    assert '"method"' in report.to_json([r])
    assert "| output_perturbation |" in report.tightness_table([r])
    e = np.linspace(0, 2, 5)
    report.plot_profile(
        e,
        certified=gaussian.delta(e, mu=1.0),
        exact=gaussian.delta(e, mu=1.0),
        path=tmp_path / "p.png",
    )
    assert (tmp_path / "p.png").exists()


# ---------------------------------------------------------------------------------------------
# confidence bounds validate successes, sums and side by argument name (RuntimeWarnings are
# errors here)


@pytest.fixture
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


@pytest.mark.usefixtures("_warnings_are_errors")
def test_n9_clopper_pearson_validates_successes():
    for bad in (float("nan"), 2.5, -1, 6, True):
        with pytest.raises(InvalidParameterError, match="successes"):
            confidence.clopper_pearson_upper(bad, 5, alpha=0.05)
        with pytest.raises(InvalidParameterError, match="successes"):
            confidence.clopper_pearson_lower(bad, 5, alpha=0.05)
    with pytest.raises(InvalidParameterError, match="successes"):
        confidence.clopper_pearson_upper(np.array([0.0, np.nan]), 5, alpha=0.05)
    with pytest.raises(InvalidParameterError, match="trials"):
        confidence.clopper_pearson_upper(0, 10**400, alpha=0.05)
    out = confidence.clopper_pearson_upper(np.array([0, 2, 5]), 5, alpha=0.05)
    assert out[2] == 1.0 and 0 < out[0] < out[1] < 1


@pytest.mark.usefixtures("_warnings_are_errors")
def test_n9_empirical_bernstein_from_sums_validates_sums():
    with pytest.raises(InvalidParameterError, match="total"):
        confidence.empirical_bernstein_from_sums(float("nan"), 0.0, 2, alpha=0.05)
    with pytest.raises(InvalidParameterError, match="total"):
        confidence.empirical_bernstein_from_sums(3.0, 1.0, 2, alpha=0.05)  # total > n
    with pytest.raises(InvalidParameterError, match="total_sq"):
        confidence.empirical_bernstein_from_sums(1.0, float("inf"), 2, alpha=0.05)
    with pytest.raises(InvalidParameterError, match="total_sq"):
        confidence.empirical_bernstein_from_sums(1.0, 1.5, 2, alpha=0.05)  # Σx² > Σx
    x = np.array([0.1, 0.4, 0.9, 0.3])
    for side in ("upper", "lower"):
        a = confidence.empirical_bernstein(x, alpha=0.05, side=side)
        b = confidence.empirical_bernstein_from_sums(
            x.sum(), (x * x).sum(), 4, alpha=0.05, side=side
        )
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15)


@pytest.mark.usefixtures("_warnings_are_errors")
@pytest.mark.parametrize("fn", [confidence.hoeffding, confidence.empirical_bernstein])
def test_side_is_validated(fn):
    for bad in ("Lower", "up", None):
        with pytest.raises(InvalidParameterError, match="side"):
            fn([0.5, 0.2], alpha=0.05, side=bad)
    with pytest.raises(InvalidParameterError, match="side"):
        confidence.empirical_bernstein_from_sums(0.7, 0.29, 2, alpha=0.05, side="both")
