"""Keyed noise draws, the seed commitment and the runtime guard."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from unlearn_torch.errors import NoiseGuardError  # noqa: E402
from unlearn_torch.noise import (  # noqa: E402
    NoiseGuard,
    NoiseSource,
    check_commitment,
    commit_seed,
    derive_key,
    new_seed,
)

from .helpers import cosine  # noqa: E402


def test_keyed_draws_replay_and_differ():
    src = NoiseSource(123)
    a = src.draw(1000, 0.5, step=3, block=-1)
    b = NoiseSource(123).draw(1000, 0.5, step=3, block=-1)
    assert a.dtype == torch.float32 and a.device.type == "cpu"
    assert torch.equal(a, b)  # replay
    others = [
        src.draw(1000, 0.5, step=4, block=-1),
        src.draw(1000, 0.5, step=3, block=0),
        src.draw(1000, 0.5, step=3, block=-1, slot=1),
        src.draw(1000, 0.5, kind="prologue", step=3, block=-1),
        NoiseSource(124).draw(1000, 0.5, step=3, block=-1),
    ]
    for o in others:
        assert abs(cosine(a, o)) < 0.2


def test_keyed_draws_do_not_touch_global_rng():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    NoiseSource(5).draw(100, 1.0, step=0)
    assert torch.equal(torch.rand(3), expected)


def test_derive_key_is_63_bit_and_label_sensitive():
    keys = {derive_key(1, "step", t, b, 0) for t in range(50) for b in range(-1, 3)}
    assert len(keys) == 200
    assert all(0 <= k < 2**63 for k in keys)


def test_seed_commitment_opens_only_with_the_seed():
    seed = new_seed()
    c = commit_seed(seed)
    assert str(seed) not in str(c)
    assert check_commitment(seed, c)
    assert not check_commitment(seed + 1, c)
    assert commit_seed(seed)["sha256"] != c["sha256"]  # salted


def _honest(guard, draws, n, std, seed=0):
    src = NoiseSource(seed)
    for t in range(draws):
        guard.observe(src.draw(n, std, step=t), std, step=t)
    guard.finish()


def test_guard_passes_honest_noise():
    g = NoiseGuard(40)
    _honest(g, 40, 500, 0.3)
    s = g.summary()
    assert s["draws"] == 40 and s["passed"]
    assert s["max_abs_correlation"] < s["bands"]["500"]["cosine_bound"]


def test_guard_catches_half_noise():
    src = NoiseSource(1)
    g = NoiseGuard(5)
    g.observe(src.draw(500, 0.5, step=0), 1.0)
    with pytest.raises(NoiseGuardError, match="chi-square"):
        g.check()


def test_guard_catches_reused_noise():
    src = NoiseSource(1)
    xi = src.draw(500, 1.0, step=0)
    g = NoiseGuard(5)
    g.observe(xi, 1.0, step=0)
    g.observe(xi.clone(), 1.0, step=1)
    with pytest.raises(NoiseGuardError, match="correlation"):
        g.check()


def test_guard_pooled_test_catches_small_blocks_of_half_noise():
    # n = 4: one draw cannot be judged, but 400 pooled draws of half noise can
    src = NoiseSource(2)
    g = NoiseGuard(400)
    for t in range(400):
        g.observe(src.draw(4, 0.5, step=t), 1.0, step=t)
    g.check()
    with pytest.raises(NoiseGuardError, match="pooled"):
        g.finish()


def test_guard_bands_are_exact_quantiles():
    from scipy import stats

    g = NoiseGuard(10, false_alarm=1e-3)
    lo, hi, cb = g.band(50)
    a = 1e-3 / 40
    assert lo == pytest.approx(stats.chi2.ppf(a / 2, 50) / 50)
    assert hi == pytest.approx(stats.chi2.isf(a / 2, 50) / 50)
    # cosine of two independent isotropic Gaussians: (1+c)/2 ~ Beta((n-1)/2, (n-1)/2)
    assert stats.beta.sf((1 + cb) / 2, 24.5, 24.5) == pytest.approx(a / 2, rel=1e-6)


def test_guard_false_alarm_rate_is_small_on_honest_runs():
    # 60 honest runs at false_alarm=0.2 each: the guard may fire, but rarely (binomial bound)
    fired = 0
    for s in range(60):
        g = NoiseGuard(10, false_alarm=0.2)
        try:
            _honest(g, 10, 50, 1.0, seed=s)
        except NoiseGuardError:
            fired += 1
    assert fired <= 30  # P(Bin(60, 0.2) > 30) < 1e-7


# -- the fast path: draws in the two rows of one buffer, one matrix-vector product per draw ----


def _rows_and_plain(draws, n, std, seed=3):
    """The same draws judged by observe() and by observe_rows()."""
    src = NoiseSource(seed)
    xs = [src.draw(n, std, step=t) for t in range(draws)]
    plain, rows = NoiseGuard(draws), NoiseGuard(draws)
    buf = torch.empty(2, n)
    for t, x in enumerate(xs):
        plain.observe(x, std, step=t)
        buf[t % 2].copy_(x)
        rows.observe_rows(buf, t % 2, std, block=-1, step=t)
    plain.finish()
    rows.finish()
    return plain, rows


def test_guard_rows_fast_path_computes_the_same_statistics():
    plain, rows = _rows_and_plain(12, 700, 0.3)
    assert rows.q == pytest.approx(plain.q, rel=1e-5)
    assert rows.corr[0] is None and plain.corr[0] is None
    assert rows.corr[1:] == pytest.approx(plain.corr[1:], rel=1e-4, abs=1e-6)
    assert rows.summary()["draws"] == 12


def test_guard_rows_fast_path_catches_reused_and_half_noise():
    src = NoiseSource(4)
    buf = torch.empty(2, 500)
    g = NoiseGuard(5)
    buf[0].copy_(src.draw(500, 1.0, step=0))
    g.observe_rows(buf, 0, 1.0, block=-1, step=0)
    buf[1].copy_(buf[0])  # the same noise again
    g.observe_rows(buf, 1, 1.0, block=-1, step=1)
    with pytest.raises(NoiseGuardError, match="correlation"):
        g.check()
    g = NoiseGuard(5)
    buf[0].copy_(src.draw(500, 0.5, step=0))
    g.observe_rows(buf, 0, 1.0, block=-1, step=0)
    with pytest.raises(NoiseGuardError, match="chi-square"):
        g.check()


def test_guard_rows_fast_path_uses_a_restored_previous_draw():
    # after a resume the previous draw comes from the checkpoint, not from the buffer: the
    # first draw is still compared with it (here: the same noise, which must be caught)
    src = NoiseSource(5)
    prev = src.draw(400, 1.0, step=0)
    g = NoiseGuard(5)
    g.load_state({"q": [], "corr": [], "n": []}, {-1: prev.clone()})
    buf = torch.empty(2, 400)
    buf[0].copy_(prev)
    g.observe_rows(buf, 0, 1.0, block=-1, step=1)
    with pytest.raises(NoiseGuardError, match="correlation"):
        g.check()
    # an honest next draw after a restore: the cosine is computed (not skipped)
    g = NoiseGuard(5)
    g.load_state({"q": [], "corr": [], "n": []}, {-1: prev.clone()})
    buf[0].copy_(src.draw(400, 1.0, step=1))
    g.observe_rows(buf, 0, 1.0, block=-1, step=1)
    buf[1].copy_(src.draw(400, 1.0, step=2))
    g.observe_rows(buf, 1, 1.0, block=-1, step=2)
    g.check()
    assert g.corr[0] is not None and g.corr[1] is not None
    expect = float(torch.dot(prev, buf[0]) / (prev.norm() * buf[0].norm()))
    assert g.corr[0] == pytest.approx(expect, rel=1e-4, abs=1e-6)
    assert torch.equal(g.previous_draws()[-1], buf[1])
