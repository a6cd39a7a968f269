"""Run every benchmark script in this folder (``bench_*.py``) in turn."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main() -> int:
    """Run each ``bench_*.py`` as a script; return non-zero if any failed."""
    failures = 0
    scripts = sorted(Path(__file__).parent.glob("bench_*.py"))
    if not scripts:
        print("no benchmarks yet")
    for script in scripts:
        print(f"== {script.name}")
        try:
            runpy.run_path(str(script), run_name="__main__")
        except Exception as exc:  # report and carry on with the next benchmark
            failures += 1
            print(f"   failed: {exc!r}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
