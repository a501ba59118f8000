"""`make bench ARGS=NAME` runs the benchmark NAME names, not every one whose name contains it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_exact_name_picks_that_script_alone():
    run_all = load_run_all()
    scripts = [Path(f"bench_{n}.py") for n in ("train", "pretrained", "serving", "sweep")]
    assert run_all.pick(scripts, "train") == [Path("bench_train.py")]


def test_a_part_of_a_name_picks_every_script_containing_it():
    run_all = load_run_all()
    scripts = [Path(f"bench_{n}.py") for n in ("train", "pretrained", "serving", "sweep")]
    assert run_all.pick(scripts, "s") == [Path("bench_serving.py"), Path("bench_sweep.py")]
    assert run_all.pick(scripts, "nothing") == []


def test_an_unknown_name_exits_non_zero_naming_the_benchmarks(capsys):
    assert load_run_all().main(["no_such_bench"]) == 2
    assert "bench_train" in capsys.readouterr().out
