"""The runner's sort-free threshold counts are the exact integers a sort gives; plain functions
are samplers; the estimators' ``confidence`` (preferred) and ``alpha`` (deprecated) agree."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn_theory.errors import InvalidParameterError
from verification import estimators, runner, toys


def _sorted_counts(s, grid):
    """Independent reference: #{s <= t} by sorting the samples and searching the grid."""
    return np.searchsorted(np.sort(s), grid, side="right")


_finite = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(
    grid=st.lists(_finite, min_size=1, max_size=80, unique=True),
    extra=st.lists(_finite, max_size=50),
    seed=st.integers(0, 2**32 - 1),
)
def test_counts_equal_sorting_on_any_grid(grid, extra, seed):
    """Grid points themselves and their float neighbours (the ties the strict/non-strict
    inequalities must get right) are among the samples."""
    g = np.unique(np.asarray(grid, dtype=float))
    rng = np.random.default_rng(seed)
    near = g[rng.integers(0, g.size, 200)]
    s = np.concatenate(
        [
            near,
            np.nextafter(near, np.inf),
            np.nextafter(near, -np.inf),
            np.asarray(extra, dtype=float),
            near * rng.uniform(0.5, 1.5, 200),
            rng.standard_normal(200),
        ]
    )
    counter = runner._GridCounter(g)
    assert np.array_equal(counter.at_or_below(s), _sorted_counts(s, g))


@pytest.mark.parametrize(
    "grid",
    [
        np.linspace(-2, 4, 64),  # one grid point per widened bucket
        np.concatenate([np.linspace(0, 1, 40), 1 + 1e-7 * np.arange(1, 6)]),  # crowded: R > 1
        1e6 + 1e-3 * np.arange(30),  # narrow grid far from 0
        np.array([0.0, 1e-300, 1e300]),  # capped bucket table, R = 2
        1e6 + 1e-9 * np.arange(10),  # buckets below the rounding of 1e6: sorts blocks
        np.array([0.3]),  # one threshold
    ],
)
def test_counts_equal_sorting_on_blocks_and_paths(grid):
    rng = np.random.default_rng(3)
    s = np.concatenate([rng.normal(np.median(grid), 2.0, 200_003), grid, [1e308, -1e308]])
    assert np.array_equal(runner._GridCounter(grid).at_or_below(s), _sorted_counts(s, grid))


def test_run_audit_counts_are_the_sorted_counts():
    toy = toys.GaussianShift(1.0)
    grid = np.linspace(-1, 3, 17)
    res = runner.run_audit(toy, samples=50_000, delta=1e-3, grid=grid, seed=5, chunk_size=20_000)
    fp = np.zeros(grid.size, dtype=np.int64)
    fn = np.zeros(grid.size, dtype=np.int64)
    sizes, seeds = runner._plan_chunks(50_000, 20_000, 5)
    for n, ss in zip(sizes, seeds):
        x0, x1 = toy.sample(n, np.random.default_rng(ss))
        s0, s1 = toy.privacy_loss(x0), toy.privacy_loss(x1)
        fp += s0.size - _sorted_counts(s0, grid)
        fn += _sorted_counts(s1, grid)
    assert res.false_positives == fp.tolist() and res.false_negatives == fn.tolist()


# -- plain functions as samplers ---------------------------------------------------------------


def _shift_sampler(rng, n):
    return rng.standard_normal(n), 1.0 + rng.standard_normal(n)


def test_plain_function_is_a_sampler_and_matches_the_object():
    kw = dict(samples=40_000, delta=1e-3, grid=np.linspace(-1, 3, 9), seed=2)
    by_fn = runner.run_audit(_shift_sampler, **kw)

    class Obj:
        def sample(self, n, rng):
            return _shift_sampler(rng, n)

    by_obj = runner.run_audit(Obj(), **kw)
    assert by_fn.epsilon_lower == by_obj.epsilon_lower > 0
    assert runner.run_audit(lambda rng, n: _shift_sampler(rng, n), **kw).counts == by_fn.counts
    assert runner.default_grid(_shift_sampler).size > 10  # the pilot accepts functions too


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda rng: rng.standard_normal(3), "two positional arguments"),
        (lambda: None, "two positional arguments"),
        (lambda rng, n, extra: None, "two positional arguments"),
        (42, "sample\\(n, rng\\)"),
    ],
)
def test_wrong_sampler_signatures_are_named(bad, match):
    with pytest.raises(InvalidParameterError, match="sampler") as err:
        runner.run_audit(bad, samples=100, delta=1e-3, grid=[0.0])
    assert err.match(match)


def test_sampler_returning_no_pair_is_named():
    with pytest.raises(InvalidParameterError, match="must return a pair"):
        runner.run_audit(lambda rng, n: rng.standard_normal(n), samples=100, delta=1e-3, grid=[0])


def test_progress_goes_to_stderr_only_when_asked(capsys):
    kw = dict(samples=30_000, delta=1e-3, grid=[0.5], chunk_size=10_000)
    quiet = runner.run_audit(toys.GaussianShift(1.0), **kw)
    assert capsys.readouterr().err == ""
    loud = runner.run_audit(toys.GaussianShift(1.0), progress=True, **kw)
    assert "30" in capsys.readouterr().err and loud.counts == quiet.counts
    with pytest.raises(InvalidParameterError, match="progress"):
        runner.run_audit(toys.GaussianShift(1.0), progress="yes", **kw)


# -- confidence (preferred) and alpha (deprecated alias) -------------------------------------

_X0 = np.random.default_rng(0).normal(0.0, 1.0, 4000)
_X1 = np.random.default_rng(1).normal(1.5, 1.0, 4000)
_GRID = np.linspace(-1, 3, 9)
_CALLS = {
    "threshold_epsilon_lower": lambda **kw: estimators.threshold_epsilon_lower(
        _X0, _X1, delta=1e-3, thresholds=_GRID, **kw
    ),
    "threshold_delta_lower": lambda **kw: estimators.threshold_delta_lower(
        _X0, _X1, epsilon=0.5, thresholds=_GRID, **kw
    ),
    "gdp_mu_lower": lambda **kw: estimators.gdp_mu_lower(_X0, _X1, threshold=0.75, **kw),
    "gdp_epsilon_lower": lambda **kw: estimators.gdp_epsilon_lower(
        _X0, _X1, threshold=0.75, delta=1e-3, gaussian_shift=True, **kw
    ),
    "plrv_delta": lambda **kw: estimators.plrv_delta(1.5 * _X1 - 1.125, epsilon=0.5, **kw),
    "gaussian_tilted_plrv": lambda **kw: estimators.gaussian_tilted_plrv(
        1.0, 3.0, 2000, np.random.default_rng(4), **kw
    ),
    "tilted_delta": lambda **kw: estimators.tilted_delta(
        toys.GaussianShift(1.0), 3.0, 2000, np.random.default_rng(4), **kw
    ),
    "plrv_delta_mc": lambda **kw: estimators.plrv_delta_mc(
        toys.GaussianShift(1.0), 0.5, 2000, np.random.default_rng(4), **kw
    ),
    "renyi_bounded_loss": lambda **kw: estimators.renyi_bounded_loss(
        np.clip(_X0, -1, 1), order=2.0, loss_bound=1.0, **kw
    ),
}


def _values(out):
    bounds = out if isinstance(out, tuple) else (out,)
    return [(b.value, b.kind, b.details["confidence"]) for b in bounds]


@pytest.mark.parametrize("name", sorted(_CALLS))
def test_alpha_is_a_deprecated_alias_of_confidence(name):
    call = _CALLS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the preferred name never warns
        new = _values(call(confidence=0.9))
        default = _values(call())
    with pytest.warns(DeprecationWarning, match=f"{name}.*confidence=1 - alpha"):
        old = _values(call(alpha=0.1))
    assert old == new
    assert all(c == 0.9 for *_, c in new if c is not None)
    assert all(c == 0.95 for *_, c in default if c is not None)
    with pytest.raises(InvalidParameterError, match="alpha"):
        call(confidence=0.9, alpha=0.1)


def test_miscoverage_never_overstates_the_confidence():
    """a = 1 − confidence is rounded down: the stated level is always met."""
    from fractions import Fraction

    for c in (0.95, 0.9, 0.5, 0.3, 1e-3, 0.1 + 0.2, 1 - 1e-12):
        a, conf = estimators._miscoverage(c, None, "f")
        assert conf == c and 0 < a and Fraction(a) <= 1 - Fraction(c)
