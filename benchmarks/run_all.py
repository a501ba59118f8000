"""`make bench`: run every ``benchmarks/bench_*.py`` in turn and print its output.

``python benchmarks/run_all.py [NAME ...] [-- FLAG ...]`` runs only the scripts whose name
contains a NAME (e.g. ``deployment``); flags after ``--`` go to each script run
(``make bench ARGS="recipes -- --recipes csv_mlp"``). Benchmarks measure and print; nothing here
asserts a time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    flags = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    names = [a for a in argv if not a.startswith("-")]
    scripts = sorted(
        p for p in HERE.glob("bench_*.py") if not names or any(n in p.stem for n in names)
    )
    if not scripts:
        print(
            f"no benchmark matches {names}; available: {[p.stem for p in sorted(HERE.glob('bench_*.py'))]}"
        )
        return 2
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])
        ),
    }
    failed = []
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(script), *flags], cwd=HERE.parent, env=env)
        print(f"--- {script.stem}: exit {code}, {time.perf_counter() - started:.0f} s", flush=True)
        if code:
            failed.append(script.stem)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
