"""The installed ``specxform`` console script, in one subprocess (start-up costs seconds)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from specxform.registry import Registry


def test_console_script_prints_json(registry: Registry) -> None:
    script = shutil.which("specxform", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the specxform console script is not installed (pip install -e .)")
    done = subprocess.run([script, "list", "representations", "--json"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    names = [r["name"] for r in json.loads(done.stdout)["representations"]]
    assert names == [r.name for r in registry.representations()]
