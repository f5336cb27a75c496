"""``python -m unlearn ...``: the ``unlearn`` command line (same as the console script)."""

from __future__ import annotations

import sys

from unlearn_cli.cli import main

sys.exit(main())
