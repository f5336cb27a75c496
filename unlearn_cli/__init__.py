"""``unlearn``: the command-line shells above the library.

``unlearn plan | certify | methods | audit | verify | demo`` (:mod:`unlearn_cli.cli`), the demo
(:mod:`unlearn_cli.demo`) and the audit command (:mod:`unlearn_cli.audit`). This package sits on
top of the layers: it imports :mod:`unlearn_theory` and :mod:`verification`; neither imports it.
Run it as ``unlearn ...`` (console script), ``python -m unlearn ...`` or
``python -m unlearn_cli ...``.
"""

from __future__ import annotations

from .cli import main

__all__ = ["main"]
