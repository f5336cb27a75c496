"""Tests for unlearn_theory.group: group privacy for the DP-SGD baseline (docs/theory.md §7.2)."""

from __future__ import annotations

import math

import mpmath as mp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn_theory import group
from unlearn_theory.errors import InvalidParameterError


@pytest.mark.parametrize("eps,k", [(0.0, 5), (0.1, 1), (0.1, 10), (2.0, 7), (300.0, 4)])
def test_log_factor_matches_mpmath(eps, k):
    with mp.workdps(50):
        want = mp.log(mp.fsum(mp.exp(i * mp.mpf(eps)) for i in range(k)))
    assert group.log_group_delta_factor(eps, k) == pytest.approx(float(want), rel=1e-13, abs=1e-15)


@settings(max_examples=50, deadline=None)
@given(eps=st.floats(0.01, 20.0), logd=st.floats(-30, -1), k=st.integers(1, 200))
def test_split_inverts_group_privacy(eps, logd, k):
    d = math.exp(logd)
    e1, d1 = group.split_group_budget(eps, d, k)
    g = group.group_privacy(e1, d1, k)
    ge, gd = float(g.epsilon), float(g.delta)
    assert ge == pytest.approx(eps, rel=1e-12)
    assert gd <= d  # never on the wrong side
    assert gd == pytest.approx(d, rel=1e-9)
    # the simplification is valid (smaller δ') ...
    e1s, d1s = group.split_group_budget_simplified(eps, d, k)
    assert e1s == e1 and d1s <= d1 * (1 + 1e-12)
    assert float(group.group_privacy(e1s, d1s, k).delta) <= d


@settings(max_examples=50, deadline=None)
@given(eps=st.floats(0.01, 5.0), k=st.integers(2, 100))
def test_stair_lab_bug_is_optimistic_by_up_to_k(eps, k):
    """PUBLISHED BUG (labelled comparison): δ' = δ e^{-(k-1)ε/k} drops the 1/k."""
    d = 1e-5
    e1, d_bug = group.stair_lab_split(eps, d, k)
    gd = float(group.group_privacy(e1, d_bug, k).delta)
    ratio = gd / d
    assert 1.0 < ratio <= k * (1 + 1e-12)  # the implied group δ exceeds the target


def test_large_k_epsilon_no_overflow():
    e1, d1 = group.split_group_budget(800.0, 1e-5, 2)
    assert e1 == 400.0 and 0.0 < d1 < 1e-5
    assert math.isfinite(math.log(d1))


@pytest.mark.parametrize(
    "args,name",
    [((1.0, 0.0, 3), "delta"), ((1.0, 1e-5, 0), "group_size"), ((-1.0, 1e-5, 3), "epsilon")],
)
def test_bad_input(args, name):
    with pytest.raises(InvalidParameterError, match=name):
        group.split_group_budget(*args)
