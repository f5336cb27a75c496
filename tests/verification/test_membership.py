"""Membership inference against real unlearning runs (verification.membership).

Numpy parts against independent oracles (mpmath, brute force, scipy's beta quantiles); the
validity of the pre-registered protocol under a null; then one small run of the real game on
scikit-learn's digits: the leaky reference (trained, never unlearned) is caught with a clearly
positive ε lower bound above the certified ε, while after unlearning -- and after retraining --
the lower bound stays at or below the run's certificate. Seeds are fixed: deterministic.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from unlearn_theory.errors import InvalidParameterError
from verification import membership as mi
from verification.estimators import threshold_epsilon_lower


# -- scores -----------------------------------------------------------------------------------
@given(
    st.lists(st.floats(-30, 30), min_size=3, max_size=6),
    st.integers(0, 5),
)
def test_logit_confidence_and_loss_against_mpmath(z, label):
    label = label % len(z)
    mpmath.mp.dps = 60
    zs = [mpmath.mpf(v) for v in z]
    tot = mpmath.fsum(mpmath.exp(v) for v in zs)
    p = mpmath.exp(zs[label]) / tot
    phi = float(mpmath.log(p / (1 - p)))
    ce = float(-mpmath.log(p))
    got_phi = mi.logit_confidence(np.array([z]), np.array([label]))[0]
    got_loss = mi.loss_score(np.array([z]), np.array([label]))[0]
    assert got_phi == pytest.approx(phi, rel=1e-9, abs=1e-9)
    assert got_loss == pytest.approx(-ce, rel=1e-9, abs=1e-9)


def test_logit_confidence_finite_where_p_rounds_to_one():
    # p_y = 1 in float64; φ = 60 − log 2 exactly, not inf
    phi = mi.logit_confidence(np.array([[60.0, 0.0, 0.0]]), np.array([0]))
    assert phi[0] == pytest.approx(60.0 - math.log(2.0), rel=1e-12)


def test_scores_reject_bad_input():
    with pytest.raises(InvalidParameterError, match="labels"):
        mi.logit_confidence(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(InvalidParameterError, match="logits"):
        mi.loss_score(np.array([[np.nan, 0.0]]), np.array([0]))
    with pytest.raises(InvalidParameterError, match="logits"):
        mi.loss_score(np.zeros(3), np.array([0]))


@given(
    st.lists(st.integers(-5, 5), min_size=1, max_size=30),
    st.lists(st.integers(-5, 5), min_size=1, max_size=30),
)
def test_auc_is_the_pairwise_probability(a, b):
    brute = np.mean([1.0 if x > y else 0.5 if x == y else 0.0 for x in a for y in b])
    assert mi.auc(a, b) == pytest.approx(brute, abs=1e-12)


# -- LiRA fits --------------------------------------------------------------------------------
def test_lira_fit_means_and_variances():
    rng = np.random.default_rng(0)
    K, P = 8, 5
    inc = np.zeros((K, P), dtype=bool)
    for p in range(P):
        inc[rng.permutation(K)[:4], p] = True
    phi = rng.normal(size=(K, P)) + 3.0 * inc
    f = mi.lira_fit(phi, inc, variance="per_example")
    for p in range(P):
        assert f["mu_in"][p] == pytest.approx(phi[inc[:, p], p].mean())
        assert f["mu_out"][p] == pytest.approx(phi[~inc[:, p], p].mean())
        assert f["sd_in"][p] == pytest.approx(phi[inc[:, p], p].std(ddof=1))
    g = mi.lira_fit(phi, inc)  # pooled: one variance for all candidates
    resid = np.concatenate([phi[inc[:, p], p] - phi[inc[:, p], p].mean() for p in range(P)])
    assert np.allclose(g["sd_in"], math.sqrt((resid**2).sum() / (resid.size - P)))
    with pytest.raises(InvalidParameterError, match="included"):
        mi.lira_fit(phi, np.ones((K, P), dtype=bool))


def test_lira_online_is_the_gaussian_log_likelihood_ratio():
    fit = dict(
        mu_in=np.array([2.0]), sd_in=np.array([0.5]), mu_out=np.array([0.0]), sd_out=np.array([1.0])
    )
    x = np.array([-1.0, 0.3, 2.5])
    want = stats.norm.logpdf(x, 2.0, 0.5) - stats.norm.logpdf(x, 0.0, 1.0)
    assert np.allclose(mi.lira_score(x, fit, [0, 0, 0]), want)
    assert np.allclose(mi.lira_score(x, fit, [0, 0, 0], online=False), x)


# -- the bound --------------------------------------------------------------------------------
def test_epsilon_lower_is_the_clopper_pearson_formula():
    rng = np.random.default_rng(1)
    mem, non = rng.normal(2.0, 1.0, 300), rng.normal(0.0, 1.0, 300)
    t, delta, alpha = 1.0, 1e-5, 0.05
    r = mi.epsilon_lower_at(mem, non, threshold=t, delta=delta, alpha=alpha)
    tp, fp = int((mem > t).sum()), int((non > t).sum())
    # independent oracle: scipy's beta quantiles, α/2 per rate
    tpr_lo = stats.beta.ppf(alpha / 2, tp, 300 - tp + 1)
    fpr_hi = stats.beta.ppf(1 - alpha / 2, fp + 1, 300 - fp)
    want = max(math.log((tpr_lo - delta) / fpr_hi), math.log((1 - fpr_hi - delta) / (1 - tpr_lo)))
    assert r["epsilon_lower"] == pytest.approx(want, rel=1e-9)
    assert r["tpr_lo"] == pytest.approx(tpr_lo) and r["fpr_hi"] == pytest.approx(fpr_hi)
    b = threshold_epsilon_lower(non, mem, delta=delta, confidence=1 - alpha, thresholds=[t])
    assert r["epsilon_lower"] == b.value and r["confidence"] == 0.95


def test_preregistered_protocol_is_valid_under_the_null():
    """Equal laws (ε = 0): the lower bound, with the threshold fixed on separate calibration
    draws, is positive in at most ~α of the repetitions (binomial allowance)."""
    rng = np.random.default_rng(2)
    reps, hits = 300, 0
    for _ in range(reps):
        t = mi.preregister_threshold(rng.normal(size=40), rng.normal(size=40), delta=1e-5)
        r = mi.epsilon_lower_at(rng.normal(size=60), rng.normal(size=60), threshold=t, delta=1e-5)
        hits += r["epsilon_lower"] > 0
    assert hits <= stats.binom.ppf(0.999, reps, 0.05)


def test_preregistered_threshold_separates_separated_samples():
    t = mi.preregister_threshold(np.arange(10.0, 20.0), np.arange(0.0, 10.0), delta=1e-5)
    assert 9.0 <= t < 10.0
    with pytest.raises(InvalidParameterError):
        mi.preregister_threshold([], [1.0], delta=1e-5)


def test_config_validation():
    with pytest.raises(InvalidParameterError, match="shadows"):
        mi.MembershipConfig(shadows=7).validate()
    with pytest.raises(InvalidParameterError, match="canary"):
        mi.MembershipConfig(canary="x").validate()
    with pytest.raises(InvalidParameterError, match="conditions"):
        mi.MembershipConfig(conditions=("bogus",)).validate()


# -- the real game on digits ------------------------------------------------------------------
@pytest.fixture(scope="module")
def game():
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    return mi.run_membership(mi.MembershipConfig.fast(epsilon=1.0, seed=3), keep_scores=True)


def test_leaky_reference_is_caught(game):
    """Trained on x and never unlearned: both attacks see it, and the lower bound exceeds the
    certified ε = 1 -- the comparison below can fail."""
    cert = game["certified_epsilon"]
    for attack in ("loss", "lira"):
        r = game["results"]["trained"][attack]
        assert r["auc"] > 0.9
        assert r["epsilon_lower"] > 1.5
        assert r["epsilon_lower"] > cert


def test_unlearned_and_retrained_stay_below_the_certificate(game):
    cert = game["certified_epsilon"]
    assert 0 < cert <= 1.0 * (1 + 1e-9)  # the certificate of the runs, for the plan's target ε=1
    for cond in ("unlearned", "retrained"):
        for attack in ("loss", "lira"):
            r = game["results"][cond][attack]
            assert r["epsilon_lower"] <= cert
            assert r["ratio"] == r["epsilon_lower"] / cert
    # retraining: equal laws; the bound is 0 (a positive value has probability <= α)
    assert game["results"]["retrained"]["loss"]["epsilon_lower"] == 0.0


def test_thresholds_come_from_the_separate_calibration_runs(game):
    delta = game["config"]["delta"]
    for cond in mi.CONDITIONS:
        for attack in ("loss", "lira"):
            r = game["results"][cond][attack]
            s = r["scores"]
            assert len(s["calibration_member"]) == game["config"]["calibration_runs"]
            assert len(s["evaluation_member"]) == game["config"]["evaluation_runs"]
            t = mi.preregister_threshold(
                s["calibration_member"], s["calibration_nonmember"], delta=delta
            )
            assert r["threshold"] == t
            again = mi.epsilon_lower_at(
                s["evaluation_member"], s["evaluation_nonmember"], threshold=t, delta=delta
            )
            assert again["epsilon_lower"] == r["epsilon_lower"]
    assert game["unlearn_calls"] > 0 and game["runs_per_second"] > 0
