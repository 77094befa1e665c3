"""Listing what is installed must stay fast: no torch and no scipy.signal at plugin load."""

from __future__ import annotations

import subprocess
import sys


def test_loading_every_plugin_imports_neither_torch_nor_scipy_signal() -> None:
    code = (
        "import sys; from specxform.plugins import get_registry; get_registry(); "
        "from specxform.cli.main import main; "
        "print(sorted(m for m in ('torch', 'scipy.signal') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # Each costs about a second to import; `specxform list` needs neither.
    assert out.stdout.strip() == "[]"
