"""`make bench`: run every ``benchmarks/bench_*.py`` in turn and print its output.

``python benchmarks/run_all.py [NAME ...] [-- FLAG ...]`` runs only the scripts a NAME picks: the
one named exactly ``bench_NAME.py`` where there is one (``train`` is ``bench_train.py``, not also
``bench_pretrained.py``), else every script whose name contains it (e.g. ``serv``); flags after ``--`` go to each script run
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


def pick(scripts: list[Path], name: str) -> list[Path]:
    """The scripts NAME picks: ``bench_NAME.py`` alone if it exists, else those containing NAME."""
    exact = [p for p in scripts if p.stem == f"bench_{name}"]
    return exact or [p for p in scripts if name in p.stem]


def main(argv: list[str]) -> int:
    flags = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    names = [a for a in argv if not a.startswith("-")]
    every = sorted(HERE.glob("bench_*.py"))
    scripts = sorted({p for n in names for p in pick(every, n)}) if names else every
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
