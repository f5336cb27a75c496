"""``unlearn``: the distribution's name as a package, so that ``python -m unlearn`` works.

A shim above every layer: ``python -m unlearn ARGS`` is the ``unlearn`` command line
(:func:`unlearn_cli.cli.main`, loaded only when it runs). The library itself lives in
:mod:`unlearn_theory` (the math), :mod:`unlearn_torch` (running plans on torch models) and
:mod:`verification` (exact toys, Monte Carlo audits); nothing below imports this package.

>>> import unlearn
>>> unlearn.__version__ == __import__("unlearn_theory").__version__
True
"""

from __future__ import annotations

from collections.abc import Sequence

from unlearn_theory._version import __version__

__all__ = ["__version__", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``unlearn`` command line on ``argv`` (default: ``sys.argv[1:]``); returns the
    exit status (0 success, 1 a check failed, 2 bad input).

    >>> main(["certify", "output_perturbation", "--delta", "1e-5", "--noise-std", "8",
    ...       "--clip-initial", "1"])
    certified epsilon = 0.926342 at delta = 1e-05 (exact bound, method output_perturbation)
    0
    """
    from unlearn_cli.cli import main as cli_main

    return cli_main(argv)
