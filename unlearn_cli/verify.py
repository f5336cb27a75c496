"""``unlearn verify FILE [--model MODEL] [--record RECORD] [--seed-file SEED] [--json]``.

FILE is a certificate written by :func:`unlearn_torch.unlearn` or a plan file
(``UnlearningPlan.to_json``). For a certificate the guarantee is recomputed by the accountant
from the recorded spec of what ran, and the hashes (content, plan, optionally the model file,
the private run record's commitment and content, and the seed commitment) are checked; for a
plan the plan's spec is certified again. Exit status 0
when the file certifies what it claims, 1 when it does not (each problem on its own line), 2
when the file cannot be read. Torch is needed only to hash a model file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["add_verify_arguments", "run_verify"]


def add_verify_arguments(subparsers):
    """Add the ``verify`` sub-command to an argparse ``subparsers`` object; returns the parser."""
    p = subparsers.add_parser(
        "verify",
        help="re-derive a certificate's or a plan's guarantee and hashes",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("path", metavar="FILE", help="certificate.json or a plan JSON file")
    p.add_argument("--model", default=None, help="model state-dict file (torch.save) to hash")
    p.add_argument(
        "--record",
        default=None,
        help="the run's private run_record.json: checked against the certificate's commitment",
    )
    p.add_argument("--seed-file", default=None, help="the run's seed file (auditors only)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def _kind(path: Path) -> str | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("schema") == "unlearn-certificate":
        return "certificate"
    return "plan"


def run_verify(args) -> int:
    """Run the ``verify`` sub-command; returns the exit status (0 valid, 1 invalid, 2 error)."""
    from unlearn_torch.certificate import verify_certificate, verify_plan

    path = Path(args.path)
    kind = _kind(path)
    if kind is None:
        print(f"unlearn: error: {path} is not a readable JSON object", file=sys.stderr)
        return 2
    record = getattr(args, "record", None)
    if kind == "certificate":
        if record is not None and _kind(Path(record)) is None:
            print(f"unlearn: error: {record} is not a readable JSON object", file=sys.stderr)
            return 2
        problems = verify_certificate(
            path,
            getattr(args, "model", None),
            seed_path=getattr(args, "seed_file", None),
            record_path=record,
        )
    else:
        if getattr(args, "model", None) or getattr(args, "seed_file", None) or record:
            print(
                "unlearn: error: --model/--record/--seed-file apply to certificates only",
                file=sys.stderr,
            )
            return 2
        problems = verify_plan(path)
    if getattr(args, "json", False):
        print(
            json.dumps(
                {"file": str(path), "kind": kind, "valid": not problems, "problems": problems},
                indent=2,
            )
        )
    else:
        if problems:
            print(f"{path}: INVALID {kind}")
            for prob in problems:
                print(f"  - {prob}")
        else:
            print(f"{path}: valid {kind}")
    return 1 if problems else 0
