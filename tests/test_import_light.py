"""`import unlearn_theory` must stay light: no torch, sympy or matplotlib."""

from __future__ import annotations

import subprocess
import sys


def test_import_unlearn_theory_loads_no_heavy_modules():
    code = (
        "import sys, unlearn_theory, unlearn_theory.gaussian;"
        "import importlib;"
        "[importlib.import_module('unlearn_theory.' + m) for m in "
        "('renyi','conversions','pld','planning','symbolic','symbolic_bounds','contraction',"
        "'iteration','subspace','langevin','per_instance','ridge','odometer','dp_sgd','cli') "
        "if importlib.util.find_spec('unlearn_theory.' + m) is not None];"
        "print(' '.join(m for m in ('torch','sympy','matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"heavy modules imported: {out.stdout!r}"
