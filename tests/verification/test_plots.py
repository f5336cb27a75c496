"""verification.plots: the figures draw, the curves are the library's (never below exact), and
matplotlib's global state (backend, pyplot) is left alone."""

from __future__ import annotations

import subprocess
import sys

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from unlearn_theory import InvalidParameterError, certify, gaussian, renyi
from verification import plots

EPS = np.array([0.0, 0.5, 1.0, 2.0, 3.0])


def _drawn(fig):
    assert isinstance(fig, Figure)
    fig.canvas.draw()  # renders on the figure's own Agg canvas
    return fig.axes[0]


def test_importing_and_plotting_touch_no_global_matplotlib_state():
    """In a fresh process: importing the module loads no matplotlib; drawing every kind of
    figure (and saving one) leaves the backend as it was and never imports pyplot."""
    code = (
        "import sys\n"
        "import verification.plots as p\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported at import time'\n"
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "before = matplotlib.get_backend()\n"
        "p.plot_privacy_profile([0.5, 1.0], mu=1.0, curves=('exact', 'renyi'))\n"
        "p.plot_epsilon_vs_steps([1, 2], {'a': [2.0, 1.0]})\n"
        "p.plot_certified_vs_audited([{'epsilon_certified': 1.0, 'epsilon_lower': 0.5}])\n"
        "p.plot_delta_curves([0.5], {'x': [0.1]}, path=sys.argv[1])\n"
        "from verification import report\n"
        "report.plot_profile([0.5, 1.0], certified=[0.2, 0.1], exact=[0.1, 0.05])\n"
        "assert matplotlib.get_backend() == before, matplotlib.get_backend()\n"
        "print('pyplot' if 'matplotlib.pyplot' in sys.modules else 'ok')\n"
    )
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "f.png"
        out = subprocess.run(
            [sys.executable, "-c", code, str(png)], capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "ok"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backend_unchanged_in_this_process(tmp_path):
    before = matplotlib.get_backend()
    fig = plots.plot_privacy_profile(EPS, mu=0.8, steps=3, curves=("exact", "renyi"))
    _drawn(fig)
    plots.plot_epsilon_vs_steps([1, 2], {"a": [1.0, 0.5]}, path=tmp_path / "e.svg")
    assert (tmp_path / "e.svg").read_text().lstrip().startswith("<?xml")
    assert matplotlib.get_backend() == before


def test_gaussian_curves_are_exact_or_above():
    curves = plots.delta_curves(EPS, mu=0.7, steps=5, grid=1e-2)
    assert set(curves) == {"exact", "renyi", "pld"}
    exact = gaussian.delta(EPS, mu=0.7 * np.sqrt(5))
    np.testing.assert_array_equal(curves["exact"], exact)
    # both accountants are upper bounds: never below the exact curve
    assert np.all(curves["renyi"] >= exact)
    assert np.all(curves["pld"] >= exact)
    # the PLD upper bound is tight (well within 1 % relative here); the RDP one is not
    np.testing.assert_allclose(curves["pld"], exact, rtol=1e-2)
    assert np.all(curves["renyi"][1:] > 1.05 * exact[1:])
    # the renyi curve is the library's conversion of the composed RDP curve
    o = plots.DEFAULT_ORDERS
    rdp = 5 * renyi.gaussian(o, mu=0.7)
    assert curves["renyi"][2] == float(renyi.to_delta(o, rdp, epsilon=1.0))


def test_subsampled_curves_bracket_each_other_and_plot():
    curves = plots.delta_curves(
        [0.5, 1.0, 2.0], sample_rate=0.05, noise_multiplier=1.0, steps=20, grid=1e-2
    )
    assert set(curves) == {"renyi", "pld"}
    # the RDP conversion is looser than the (tight) PLD upper bound
    assert np.all(curves["pld"] <= curves["renyi"])
    assert np.all(np.diff(curves["pld"]) < 0)  # δ(ε) decreases
    ax = _drawn(
        plots.plot_privacy_profile(
            [0.5, 1.0, 2.0], sample_rate=0.05, noise_multiplier=1.0, steps=20, grid=1e-2
        )
    )
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == [plots.CURVE_LABELS["renyi"], plots.CURVE_LABELS["pld"]]
    assert "q=0.05" in ax.get_title() and "20 steps" in ax.get_title()


def test_plot_delta_curves_draws_the_given_values():
    ax = _drawn(plots.plot_delta_curves([0.5, 1.0, 2.0], {"exact": [0.3, 0.0, 0.01]}))
    (line,) = ax.get_lines()
    # δ = 0 cannot sit on a log axis: left out
    np.testing.assert_array_equal(line.get_xdata(), [0.5, 2.0])
    np.testing.assert_array_equal(line.get_ydata(), [0.3, 0.01])
    assert ax.get_yscale() == "log"


def test_epsilon_vs_steps_uses_certify():
    params = dict(noise_std=0.5, clip_initial=1.0, clip_model=1.0)
    steps = [1, 2, 4]
    eps = plots.epsilon_by_steps("model_clipping", steps, delta=1e-5, **params)
    for t, e in zip(steps, eps):
        assert e == float(certify("model_clipping", delta=1e-5, steps=t, **params))
    ax = _drawn(plots.plot_epsilon_vs_steps(steps, {"model clipping": eps}, delta=1e-5))
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_ydata(), eps)
    assert ax.get_ylabel() == "epsilon at delta=1e-05"


def test_certified_vs_audited_accepts_audit_results():
    from verification.audit import audit_method

    res = audit_method("output_perturbation", noise_std=2.0, steps=0, samples=20_000, seed=1)
    two_sided = {
        "label": "two-sided",
        "epsilon_certified": 2.0,
        "epsilon_lower": 1.0,
        "epsilon_upper": 1.6,
        "epsilon_estimate": 1.3,
        "confidence": 0.95,
    }
    ax = _drawn(plots.plot_certified_vs_audited([res, two_sided], title="audits"))
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "output_perturbation sign",
        "two-sided",
    ]
    _, legend = ax.get_legend_handles_labels()
    assert "certified (upper bound)" in legend and "exact" in legend
    assert "audited (95% confidence)" in legend
    certified = [line for line in ax.get_lines() if line.get_marker() == "v"]
    assert [float(line.get_ydata()[0]) for line in certified] == [res["epsilon_certified"], 2.0]
    # the audited intervals: [lower, certified] one-sided, [lower, upper] two-sided
    segments = ax.collections[0].get_segments() + ax.collections[1].get_segments()
    assert segments[0][:, 1].tolist() == [res["epsilon_lower"], res["epsilon_certified"]]
    assert segments[1][:, 1].tolist() == [1.0, 1.6]


def test_draws_into_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    out = plots.plot_delta_curves([1.0], {"x": [0.1]}, ax=ax)
    assert out is fig and len(ax.get_lines()) == 1


@pytest.mark.parametrize(
    "call,needle",
    [
        (lambda: plots.delta_curves([1.0]), "mu"),
        (lambda: plots.delta_curves([1.0], mu=-1.0), "mu"),
        (lambda: plots.delta_curves([-1.0], mu=1.0), "epsilons"),
        (lambda: plots.delta_curves([np.nan], mu=1.0), "epsilons"),
        (lambda: plots.delta_curves([1.0], mu=1.0, steps=0), "steps"),
        (lambda: plots.delta_curves([1.0], mu=1.0, curves=("bogus",)), "curves"),
        (lambda: plots.delta_curves([1.0], mu=1.0, sample_rate=0.1), "mu"),
        (
            lambda: plots.delta_curves(
                [1.0], sample_rate=0.1, noise_multiplier=1.0, curves=("exact", "pld")
            ),
            "exact",
        ),
        (lambda: plots.plot_delta_curves([1.0, 2.0], {"a": [0.1]}), "curves['a']"),
        (lambda: plots.plot_delta_curves([1.0], {"a": [1.5]}), "curves['a']"),
        (lambda: plots.plot_delta_curves([1.0], {}), "curves"),
        (lambda: plots.plot_epsilon_vs_steps([1, 2], {"a": [1.0]}), "epsilons['a']"),
        (lambda: plots.plot_epsilon_vs_steps([1], {"a": [1.0]}, delta=2.0), "delta"),
        (lambda: plots.plot_certified_vs_audited([]), "results"),
        (lambda: plots.plot_certified_vs_audited([{"epsilon_lower": 1.0}]), "results[0]"),
        (
            lambda: plots.plot_certified_vs_audited(
                [{"epsilon_certified": 1.0, "epsilon_lower": float("nan")}]
            ),
            "epsilon_lower",
        ),
        (lambda: plots.epsilon_by_steps("model_clipping", [], delta=1e-5), "steps"),
    ],
)
def test_bad_input_names_the_argument(call, needle):
    with pytest.raises(InvalidParameterError, match=None) as err:
        call()
    assert needle in str(err.value)
