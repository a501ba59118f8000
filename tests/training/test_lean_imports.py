"""`lapp` processes load Lightning without torchmetrics' transformers integration."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytest.importorskip("transformers")


def _python(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=180
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_lightning_loads_without_transformers_in_a_lapp_process():
    code = (
        "import sys\n"
        "from lightning_app.training.lean_imports import skip_torchmetrics_model_metrics\n"
        "skip_torchmetrics_model_metrics()\n"
        "import pytorch_lightning, torchmetrics\n"
        "from torchmetrics.utilities import imports as flags\n"
        "print('transformers' in sys.modules, bool(flags._TRANSFORMERS_AVAILABLE))\n"
        "import transformers\n"  # still importable by whoever needs it: pretrained runs
        "print(transformers.AutoConfig.__name__)\n"
    )
    assert _python(code).splitlines() == ["False False", "AutoConfig"]


def test_importing_the_package_alone_changes_nothing():
    code = (
        "import sys, lightning_app, lightning_app.recipes.train\n"
        "import pytorch_lightning\n"
        "from torchmetrics.utilities import imports as flags\n"
        "print(bool(flags._TRANSFORMERS_AVAILABLE))\n"
    )
    assert _python(code) == "True"


def test_too_late_marks_the_flags_anyway():
    code = (
        "import pytorch_lightning\n"
        "from lightning_app.training.lean_imports import skip_torchmetrics_model_metrics\n"
        "skip_torchmetrics_model_metrics()\n"
        "from torchmetrics.utilities import imports as flags\n"
        "print(bool(flags._TRANSFORMERS_GREATER_EQUAL_4_4))\n"
    )
    assert _python(code) == "False"
