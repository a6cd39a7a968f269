"""Run every benchmark script in this folder (``bench_*.py``) in turn.

Arguments are passed to every script: ``run_all.py --quick`` runs each in its small, fast
mode (each writes its usual ``results/*.json``).
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Run each ``bench_*.py`` as a script; return non-zero if any failed."""
    args = sys.argv[1:] if argv is None else argv
    failures = 0
    scripts = sorted(Path(__file__).parent.glob("bench_*.py"))
    if not scripts:
        print("no benchmarks yet")
    for script in scripts:
        print(f"== {script.name}", flush=True)
        sys.argv = [str(script), *args]
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exit_:  # the scripts end with raise SystemExit(main())
            if exit_.code not in (None, 0):
                failures += 1
                print(f"   failed: exit status {exit_.code}", file=sys.stderr)
        except Exception as exc:  # report and carry on with the next benchmark
            failures += 1
            print(f"   failed: {exc!r}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
