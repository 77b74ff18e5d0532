"""Kalshi's official Python SDK (``kalshi-python-async``) in a venv of its own, to read the
simulator's REST API with Kalshi's own models (tests/test_kalshi_sdk.py).

The SDK needs Python 3.13 or newer; the project's venv need not be that. ``python313`` finds one:
``FIXENGINE_PYTHON313``, ``python3.13`` on PATH, Debian's, pyenv's versions (scripts/bootstrap
installs Debian's python3.13 where the release has it). ``sdk_python`` makes the venv once per
machine and SDK version under ``~/.cache/fixengine/kalshi-sdk`` (``FIXENGINE_SDK_CACHE`` moves it)
and reuses it after. Only a package registry that cannot be reached skips the test, saying so;
anything else that is missing fails it, naming the fix.

``run_probe`` runs ``tests/kalshi_sdk_probe.py`` in that venv: the SDK's calls a plan names, each
answer as the SDK parsed it (its model class and fields), for the test to judge.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SDK = "kalshi-python-async"
# Kalshi's current release when this was written (its OpenAPI document 3.34.0). Pinned so that a
# Tuesday release cannot break CI unseen; move it on to follow Kalshi's format.
SDK_VERSION = "3.34.0"
MIN_PYTHON = (3, 13)
PROBE = Path(__file__).resolve().parents[1] / "kalshi_sdk_probe.py"
PIP_TIMEOUT_S = 30  # per connection attempt; pip's own default is minutes
INSTALL_TIMEOUT_S = 540
# What pip prints when it cannot reach its index (its retries, then urllib3's and the resolver's words).
_UNREACHABLE = ("Retrying (Retry(", "NewConnectionError", "Failed to establish a new connection",
                "Temporary failure in name resolution", "Network is unreachable", "Connection refused",
                "ConnectTimeoutError", "Read timed out")
_CHECK = "import sys, venv, ensurepip; sys.exit(sys.version_info < {!r})".format(MIN_PYTHON)


def _candidates() -> list[str]:
    found = [os.environ.get("FIXENGINE_PYTHON313", ""), sys.executable, shutil.which("python3.13") or "",
             "/usr/bin/python3.13"]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    versions = sorted(pyenv.glob("3.1[3-9]*/bin/python3"), key=lambda p: [int(x) for x in p.parts[-3].split(".") if x.isdigit()])
    return [c for c in found if c] + [str(p) for p in reversed(versions)]


def python313() -> Path:
    """An interpreter that can run the SDK and make venvs (``venv`` and ``ensurepip`` present)."""
    chosen = os.environ.get("FIXENGINE_PYTHON313")
    for candidate in _candidates():
        try:
            ok = subprocess.run([candidate, "-c", _CHECK], capture_output=True, timeout=30).returncode == 0
        except OSError:
            ok = False
        if ok:
            return Path(candidate)
        if candidate == chosen:
            raise RuntimeError(f"FIXENGINE_PYTHON313={chosen} is not Python 3.13 or newer with venv and ensurepip")
    raise RuntimeError(
        f"no Python 3.13 or newer (with venv and ensurepip) for Kalshi's SDK {SDK}, which needs it: run "
        "scripts/bootstrap as root (it installs Debian's python3.13 and python3.13-venv where the release "
        "has them), install one with pyenv, or set FIXENGINE_PYTHON313 to an interpreter")


def cache_dir() -> Path:
    if os.environ.get("FIXENGINE_SDK_CACHE"):
        return Path(os.environ["FIXENGINE_SDK_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fixengine" / "kalshi-sdk"


def sdk_python() -> Path:
    """The interpreter of a venv holding the SDK, made now if this machine has none yet."""
    base = python313()
    tag = subprocess.run([str(base), "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
                         capture_output=True, text=True, check=True).stdout.strip()
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"{SDK}-{SDK_VERSION}-py{tag}"
    python, done = venv / "bin" / "python", venv / ".installed"
    with open(root / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # test processes and CI runs on one machine make it once
        if done.exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)  # what an interrupted run left
        subprocess.run([str(base), "-m", "venv", str(venv)], capture_output=True, check=True)
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--timeout",
             str(PIP_TIMEOUT_S), "--retries", "2", f"{SDK}=={SDK_VERSION}"],
            capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        if pip.returncode != 0:
            said = (pip.stdout + pip.stderr).strip()
            shutil.rmtree(venv, ignore_errors=True)
            if any(marker in said for marker in _UNREACHABLE):
                pytest.skip(f"the package registry is unreachable: pip could not download {SDK}=={SDK_VERSION} "
                            f"into {venv} ({said.splitlines()[-1]})")
            raise RuntimeError(f"pip could not install {SDK}=={SDK_VERSION} into {venv}:\n{said}")
        done.write_text(f"{SDK}=={SDK_VERSION}\n")
    return python


def run_probe(python: Path, plan: dict[str, object], timeout: float = 60) -> dict[str, dict[str, object]]:
    """What each call of ``plan`` returned, as the SDK parsed it (see tests/kalshi_sdk_probe.py)."""
    probe = subprocess.run([str(python), str(PROBE)], input=json.dumps(plan), capture_output=True, text=True,
                           timeout=timeout)
    if probe.returncode != 0:
        raise RuntimeError(f"the SDK probe failed ({probe.returncode}):\n{probe.stderr}")
    return json.loads(probe.stdout)
