"""`make`'s venv step on a Python without the venv module (Debian/Ubuntu without
python3-venv) names the package to install and leaves no half-made venv behind."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Like Debian's python3 without python3-venv: `-m venv` fails, everything else works.
STUB = f"""#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin"
  echo "The virtual environment was not created successfully: ensurepip is not available." >&2
  exit 1
fi
exec {sys.executable} "$@"
"""


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_python_without_venv_is_told_which_package_to_install(tmp_path: Path) -> None:
    stub = tmp_path / "python3"
    stub.write_text(STUB)
    stub.chmod(0o755)
    venv = tmp_path / "venv"
    done = subprocess.run(
        ["make", "-C", str(ROOT), f"PYTHON={stub}", f"VENV={venv}", f"{venv}/bin/activate"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    package = f"python3.{sys.version_info[1]}-venv"
    assert f"apt-get install {package}" in done.stderr, done.stderr
    assert not venv.exists()
