"""Monte Carlo audit on the REAL torch code path (verification.torch_audit).

Every draw below is one run of unlearn_torch's Interpreter with its keyed NoiseSource on a
one-coordinate (or one-coordinate-per-block) model: the honest audit stays below the certified
epsilon, faults injected at the noise source (reused noise, half noise) push the audit's
certified LOWER bound above the certified epsilon, and the honest output law is the numpy
interpreter's law for the same spec. Seeds are fixed: the outcomes are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

torch = pytest.importorskip("torch")

from unlearn_theory.errors import InvalidParameterError  # noqa: E402
from verification import audit  # noqa: E402
from verification import torch_audit as ta  # noqa: E402

torch.set_num_threads(1)

# model clipping with the "repel" field (chains that straddle 0 are pushed apart by the full
# step allowance): amplification by iteration makes the certified epsilon small after a few
# steps -- if, and only if, each step's noise is fresh and of the planned size
MC = dict(noise_std=1.0, learning_rate=1.0, clip_gradient=2.0, loss="repel")
GC = dict(noise_std=1.0, steps=5, weight_decay=1.0, loss="saturating")
OP = dict(noise_std=3.0, steps=0)


def _audit(method, samples, delta=1e-3, **kw):
    return ta.audit_torch_method(method, samples=samples, delta=delta, seed=1, **kw)


# -- (1) honest runs are consistent --------------------------------------------------------------
def test_honest_gradient_clipping_audit_below_certified():
    r = _audit("gradient_clipping", 600, **GC)
    assert r["status"] == "ok" and r["sampler"] == "unlearn_torch"
    assert r["epsilon_lower"] > 0.5  # the audit sees the worlds apart ...
    assert r["consistent"] and r["epsilon_lower"] <= r["epsilon_certified"]  # ... within bounds
    assert r["epsilon_lower"] <= r["epsilon_exact"] <= r["epsilon_certified"] * (1 + 1e-9)


def test_honest_output_perturbation_audit_below_certified():
    r = _audit("output_perturbation", 5_000, delta=1e-2, **OP)
    assert r["epsilon_lower"] > 0.5
    assert r["consistent"] and r["epsilon_lower"] <= r["epsilon_exact"] <= r["epsilon_certified"]


# -- (2) faults at the noise source are caught -----------------------------------------------------
def test_reused_noise_caught_by_the_audit():
    honest = _audit("model_clipping", 300, steps=10, **MC)
    bad = _audit("model_clipping", 400, steps=10, fault="reuse_noise", **MC)
    assert honest["consistent"]
    assert not bad["consistent"]
    assert bad["epsilon_lower"] > 5 * bad["epsilon_certified"]  # decisive, not marginal


def test_half_noise_caught_by_the_audit_model_clipping():
    bad = _audit("model_clipping", 600, steps=6, fault="half_noise", **MC)
    assert not bad["consistent"] and bad["epsilon_lower"] > 2 * bad["epsilon_certified"]


def test_half_noise_caught_by_the_audit_gradient_clipping():
    # saturating field: the two worlds are an exact Gaussian shift, the certified epsilon is
    # within ~20 % of the exact one, and halving the noise doubles the shift
    kw = dict(noise_std=3.0, steps=3, learning_rate=0.3, loss="saturating")
    bad = _audit("gradient_clipping", 1_000, delta=5e-2, fault="half_noise", **kw)
    assert not bad["consistent"] and bad["epsilon_lower"] > 1.2 * bad["epsilon_certified"]


def test_half_noise_caught_by_the_audit_output_perturbation():
    bad = _audit("output_perturbation", 5_000, delta=1e-2, fault="half_noise", **OP)
    assert not bad["consistent"] and bad["epsilon_lower"] > 1.5 * bad["epsilon_certified"]


# -- (3) the torch layer's output law is the numpy interpreter's ------------------------------
def test_torch_law_is_the_exact_gaussian_of_gradient_clipping():
    """Saturating field: x_T ~ N(±(ρ^T C0 + γC1 Σρ^k), σ² Σρ^{2k}) exactly (ρ = 1 − γλ)."""
    ch = audit.MethodChains("gradient_clipping", **GC)
    x0, x1 = ta.TorchMethodSampler(ch).sample_torch(600, np.random.SeedSequence(5), "cpu")
    rho = 1 - ch.learning_rate * ch.weight_decay
    T = ch.steps
    mean = rho**T * ch.clip_initial + ch.learning_rate * ch.clip_gradient * sum(
        rho**k for k in range(T)
    )
    var = ch.noise_std**2 * sum(rho ** (2 * k) for k in range(T))
    for x, m in ((x0, -mean), (x1, mean)):
        assert stats.kstest(x, "norm", args=(m, math.sqrt(var))).pvalue > 1e-4
        n = x.size
        assert abs(x.mean() - m) < 4.5 * math.sqrt(var / n)
        q = (n - 1) * x.var(ddof=1) / var
        assert stats.chi2.ppf(1e-5, n - 1) < q < stats.chi2.isf(1e-5, n - 1)


@pytest.mark.parametrize(
    "method,kw",
    [
        ("model_clipping", dict(steps=6, **MC)),
        ("model_clipping", dict(steps=6, fault="reuse_noise", **MC)),
        ("model_clipping", dict(steps=4, fault="half_noise", initial_noise_std=0.5, **MC)),
        (
            "blockwise_gradient_clipping",
            dict(noise_std=1.0, steps=6, blocks=3, weight_decay=1.0, loss="sign"),
        ),
    ],
)
def test_torch_law_matches_numpy_interpreter(method, kw):
    ch = audit.MethodChains(method, **kw)
    b0, b1 = ta.TorchMethodSampler(ch).sample_torch(400, np.random.SeedSequence(7), "cpu")
    a0, a1 = ch.sample(100_000, np.random.default_rng(7))
    if b0.ndim == 2:  # block-wise: every coordinate, and the pre-registered score
        assert b0.shape == (400, 3)
        for j in range(3):
            assert stats.ks_2samp(a0[:, j], b0[:, j]).pvalue > 1e-4
            assert stats.ks_2samp(a1[:, j], b1[:, j]).pvalue > 1e-4
    for a, b in ((a0, b0), (a1, b1)):
        assert stats.ks_2samp(ch.score(a), ch.score(b)).pvalue > 1e-4


@pytest.mark.parametrize("fault", ["half_noise", "reuse_noise"])
def test_law_comparison_sees_a_faulty_source(fault):
    """Negative control: the same comparison rejects a torch run with a faulty noise source
    against the honest numpy law (the law test above has power)."""
    kw = dict(steps=6, **MC)
    bad = audit.MethodChains("model_clipping", fault=fault, **kw)
    b0, b1 = ta.TorchMethodSampler(bad).sample_torch(400, np.random.SeedSequence(7), "cpu")
    a0, a1 = audit.MethodChains("model_clipping", **kw).sample(100_000, np.random.default_rng(7))
    assert stats.ks_2samp(a0, b0).pvalue < 1e-8 and stats.ks_2samp(a1, b1).pvalue < 1e-8


# -- the fault device and the sampler's contract ----------------------------------------------------
def test_faulty_noise_source_reuses_and_halves_at_the_source():
    from unlearn_torch.noise import NoiseSource

    honest = NoiseSource(11)
    reuse = ta.faulty_noise_source(11, "reuse_noise")
    half = ta.faulty_noise_source(11, "half_noise")
    assert isinstance(reuse, NoiseSource)
    first = honest.draw(50, 2.0, step=0)
    buf = torch.empty(50)
    for step in range(4):
        got = reuse.draw(50, 2.0, step=step, out=buf)
        assert got is buf and torch.equal(got, first)  # the step-0 draw, written into out
        assert torch.allclose(half.draw(50, 2.0, step=step), honest.draw(50, 2.0, step=step) / 2)
    # prologue draws stay fresh under "reuse_noise" (as in the numpy fault)
    assert torch.equal(
        reuse.draw(50, 2.0, kind="prologue", step=0), honest.draw(50, 2.0, kind="prologue", step=0)
    )
    with pytest.raises(InvalidParameterError):
        ta.faulty_noise_source(11, "bad")


def test_sampler_refuses_methods_the_torch_layer_does_not_run():
    with pytest.raises(InvalidParameterError):  # dp_sgd_group runs through Opacus, not here
        ta.TorchMethodSampler(audit.MethodChains("dp_sgd_group", 1.0, 1, loss="zero"))
    with pytest.raises(InvalidParameterError):  # Opacus samples retain records: "zero" only
        ta.OpacusDPSGDSampler(audit.MethodChains("dp_sgd_group", 1.0, 1, loss="sign"))
    assert isinstance(
        ta.torch_sampler(audit.MethodChains("dp_sgd_group", 1.0, 1, loss="zero")),
        ta.OpacusDPSGDSampler,
    )


# -- langevin through the real Interpreter (per-example clip at M, cyclic batches) ----------------
LANG = dict(audit.EXAMPLES["langevin"], steps=1, noise_std=0.4)


def test_honest_langevin_audit_below_certified():
    r = _audit("langevin", 1_000, delta=1e-2, **LANG)
    assert r["status"] == "ok" and r["code_path"] == "unlearn_torch.interpreter.Interpreter"
    assert r["epsilon_lower"] > 0.5
    assert r["consistent"] and r["epsilon_lower"] <= r["epsilon_exact"] <= r["epsilon_certified"]


def test_half_noise_caught_by_the_audit_langevin():
    # the certificate is within ~20 % of the exact epsilon on this chain; half the noise doubles
    # the Gaussian shift (exact epsilon 5.2 against a certified 2.4); 2500 runs per world see
    # 2.8 (a valid 95 % lower bound), past the certificate
    bad = _audit("langevin", 2_500, delta=1e-2, fault="half_noise", **LANG)
    assert not bad["consistent"] and bad["epsilon_lower"] > 1.1 * bad["epsilon_certified"]


@pytest.mark.parametrize(
    "kw",
    [
        dict(audit.EXAMPLES["langevin"]),  # full batch, 10 steps
        dict(audit.EXAMPLES["langevin"], batch_size=5, steps=4, noise_std=0.2),  # cyclic
    ],
)
def test_torch_langevin_law_is_the_exact_gaussian_and_the_numpy_law(kw):
    """Quadratic field m(x − a), clip and projection inactive: x_N ~ N(a + c^N (±Z/2 − a),
    s² Σ_{k<N} c^{2k}) exactly, c = 1 − ηm (verification.toys.LangevinQuadraticChain)."""
    ch = audit.MethodChains("langevin", **kw)
    b0, b1 = ta.TorchMethodSampler(ch).sample_torch(400, np.random.SeedSequence(9), "cpu")
    a0, a1 = ch.sample(100_000, np.random.default_rng(9))
    c = 1 - ch.learning_rate * ch.strong_convexity
    N, z, a = ch.steps, ch.langevin_distance(), ch.anchor
    var = ch.noise_std**2 * sum(c ** (2 * k) for k in range(N))
    for x, ref, start in ((b0, a0, -z / 2), (b1, a1, z / 2)):
        m = a + c**N * (start - a)
        assert stats.kstest(x, "norm", args=(m, math.sqrt(var))).pvalue > 1e-4
        assert abs(x.mean() - m) < 4.5 * math.sqrt(var / x.size)
        q = (x.size - 1) * x.var(ddof=1) / var
        assert stats.chi2.ppf(1e-5, x.size - 1) < q < stats.chi2.isf(1e-5, x.size - 1)
        assert stats.ks_2samp(ref, x).pvalue > 1e-4


# -- dp_sgd_group through the real train_dp_sgd (Opacus) ---------------------------------------
DPS = dict(noise_std=2.0, steps=1, sample_rate=0.9, forget_size=2, loss="zero", learning_rate=1.0)


def test_opacus_law_matches_numpy_interpreter_and_honest_audit_is_consistent():
    ch = audit.MethodChains("dp_sgd_group", **DPS)
    b0, b1 = ta.OpacusDPSGDSampler(ch).sample_torch(300, np.random.SeedSequence(4), "cpu")
    a0, a1 = ch.sample(100_000, np.random.default_rng(4))
    assert stats.ks_2samp(a0, b0).pvalue > 1e-4 and stats.ks_2samp(a1, b1).pvalue > 1e-4
    assert abs(b1.mean() - b0.mean() - 0.9 * 2) < 5 * 2.0 * math.sqrt(2 / 300)  # γ C1 q k
    r = _audit("dp_sgd_group", 400, delta=1e-2, **DPS)
    assert r["code_path"].startswith("unlearn_torch.baselines.train_dp_sgd")
    assert r["consistent"] and r["epsilon_lower"] <= r["epsilon_exact"] <= r["epsilon_certified"]


def test_half_noise_in_opacus_caught_by_the_audit():
    from opacus.optimizers import optimizer as opt_mod

    real = opt_mod._generate_noise
    bad = _audit("dp_sgd_group", 800, delta=1e-2, fault="half_noise", **DPS)
    assert opt_mod._generate_noise is real  # the fault device restores Opacus
    assert not bad["consistent"] and bad["epsilon_lower"] > 1.1 * bad["epsilon_certified"]


def test_sampler_is_reproducible_and_its_worlds_independent_of_chunking():
    ch = audit.MethodChains("gradient_clipping", 1.0, 3, loss="sign")
    s = ta.TorchMethodSampler(ch)
    a = s.sample_torch(20, np.random.SeedSequence(3), "cpu")
    b = s.sample_torch(20, np.random.SeedSequence(3), "cpu")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0].shape == (20,) and np.all(np.isfinite(a[0]))
    assert ta.throughput(ch, runs=10) > 0


def test_audit_does_not_depend_on_the_executor():
    from concurrent.futures import ProcessPoolExecutor

    kw = dict(samples=120, chunk_size=40, seed=3, noise_std=1.0, steps=2, loss="sign")
    serial = ta.audit_torch_method("gradient_clipping", **kw)
    with ProcessPoolExecutor(2) as ex:  # the sampler is picklable; chunks are seeded alone
        pooled = ta.audit_torch_method("gradient_clipping", executor=ex, **kw)
    for key in ("false_positives", "false_negatives", "counts"):
        assert serial["audit"][key] == pooled["audit"][key]


# -- command line: unlearn audit METHOD --torch ----------------------------------------------------
def _cli(argv):
    import argparse

    from unlearn_cli import audit as audit_cli

    p = argparse.ArgumentParser()
    audit_cli.add_audit_arguments(p)
    return audit_cli.run_audit_command(p.parse_args(argv))


def test_cli_torch_flag_runs_the_torch_layer(capsys):
    base = ["output_perturbation", "--noise-std", "3", "--delta", "1e-2", "--torch"]
    assert _cli(base + ["--samples", "2000", "--workers", "2"]) == 0
    text = capsys.readouterr().out
    assert "unlearn_torch.interpreter.Interpreter" in text and "runs/s" in text
    assert _cli(base + ["--samples", "5000", "--inject-fault", "half_noise", "--json"]) == 1
    assert '"sampler": "unlearn_torch"' in capsys.readouterr().out
    with pytest.raises(InvalidParameterError):  # Opacus audit: the "zero" retain field only
        _cli(["dp_sgd_group", "--noise-std", "1", "--torch", "--samples", "10", "--loss", "sign"])
