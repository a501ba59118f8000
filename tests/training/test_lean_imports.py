"""`lapp` processes load Lightning without torchmetrics' transformers and matplotlib integrations."""

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
        "print('matplotlib' in sys.modules, bool(flags._MATPLOTLIB_AVAILABLE))\n"
        "import transformers, matplotlib.pyplot\n"  # still importable by whoever needs them
        "print(transformers.AutoConfig.__name__, matplotlib.pyplot.figure.__name__)\n"
    )
    assert _python(code).splitlines() == ["False False", "False False", "AutoConfig figure"]


def test_importing_the_package_alone_changes_nothing():
    code = (
        "import sys, lightning_app, lightning_app.recipes.train\n"
        "import pytorch_lightning\n"
        "from torchmetrics.utilities import imports as flags\n"
        "print(bool(flags._TRANSFORMERS_AVAILABLE), bool(flags._MATPLOTLIB_AVAILABLE))\n"
    )
    assert _python(code) == "True True"


def test_too_late_marks_the_flags_anyway():
    code = (
        "import pytorch_lightning\n"
        "from lightning_app.training.lean_imports import skip_torchmetrics_model_metrics\n"
        "skip_torchmetrics_model_metrics()\n"
        "from torchmetrics.utilities import imports as flags\n"
        "print(bool(flags._TRANSFORMERS_GREATER_EQUAL_4_4))\n"
    )
    assert _python(code) == "False"


def test_scipy_signal_waits_for_its_first_use_and_then_is_whole():
    code = (
        "import sys\n"
        "from lightning_app.training.lean_imports import lean_lightning_imports, DeferredSignal\n"
        "lean_lightning_imports()\n"
        "import pytorch_lightning, torchmetrics\n"
        "print(isinstance(sys.modules['scipy.signal'], DeferredSignal), 'scipy.stats' in sys.modules)\n"
        "import scipy.signal\n"
        "print(len(scipy.signal.hamming(5)))\n"  # torchmetrics' alias, through the stand-in
        "from scipy.signal import butter\n"  # the first real use imports the real module
        "b, a = butter(2, 0.1)\n"
        "import scipy.signal.windows\n"
        "real = sys.modules['scipy.signal']\n"
        "print(type(real).__name__, real is scipy.signal, len(b), real.hamming is real.windows.hamming)\n"
    )
    assert _python(code).splitlines() == ["True False", "5", "module True 3 True"]


def test_a_submodule_first_imports_the_real_module_too():
    code = (
        "import sys\n"
        "from lightning_app.training.lean_imports import defer_scipy_signal\n"
        "defer_scipy_signal()\n"
        "from scipy.signal.windows import hann\n"
        "print(len(hann(4)), type(sys.modules['scipy.signal']).__name__)\n"
    )
    assert _python(code).splitlines() == ["4 module"]
