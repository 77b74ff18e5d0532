"""The peer's interpreter: a venv of its own holding the PyPI package ``kalshi-sdk`` (its asyncio
Kalshi FIX client, ``kalshi.fix``), which the speed benchmark runs ``benchmarks/clients/peer.py``
under. The SDK is never a dependency of this project; it lives only in that venv.

    .venv/bin/python benchmarks/peer_venv.py     # makes the venv if needed, prints its interpreter

The SDK needs Python 3.12 or newer; the project's venv need not be that. The base interpreter is
the first of: ``FIXENGINE_PYTHON313``, this interpreter, ``python3.13`` / ``python3.12`` on PATH,
Debian's ``/usr/bin/python3.13``, pyenv's versions (newest first). The venv is made once per machine,
SDK version and Python version under ``~/.cache/fixengine/bench-peer/<version>-py<X.Y>``
(``FIXENGINE_BENCH_CACHE`` moves the parent folder) and reused after.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

SDK = "kalshi-sdk"
# Pinned so that a new release cannot change what the benchmark compares against unseen.
SDK_VERSION = "22.4.0"
MIN_PYTHON = (3, 12)
PIP_TIMEOUT_S = 30  # per connection attempt; pip's own default is minutes
INSTALL_TIMEOUT_S = 540
# What pip prints when it cannot reach its index (its retries, then urllib3's and the resolver's words).
UNREACHABLE_MARKERS = ("Retrying (Retry(", "NewConnectionError", "Failed to establish a new connection",
                       "Temporary failure in name resolution", "Network is unreachable", "Connection refused",
                       "ConnectTimeoutError", "Read timed out")
_CHECK = f"import sys, venv, ensurepip; sys.exit(sys.version_info < {MIN_PYTHON!r})"


class RegistryUnreachable(RuntimeError):
    """pip could not reach the package index (a test skips on this; anything else fails)."""


def _candidates() -> list[str]:
    found = [os.environ.get("FIXENGINE_PYTHON313", ""), sys.executable, shutil.which("python3.13") or "",
             shutil.which("python3.12") or "", "/usr/bin/python3.13"]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    versions = sorted((p for p in pyenv.glob("3.*/bin/python3") if _version_of(p) >= MIN_PYTHON), key=_version_of)
    return [c for c in found if c] + [str(p) for p in reversed(versions)]


def _version_of(python: Path) -> tuple[int, ...]:
    # pyenv's folder name, e.g. versions/3.13.0/bin/python3 -> (3, 13, 0); odd names sort first
    return tuple(int(x) for x in python.parts[-3].split(".") if x.isdigit())


def base_python() -> Path:
    """An interpreter that can run the SDK and make venvs (``venv`` and ``ensurepip`` present)."""
    chosen = os.environ.get("FIXENGINE_PYTHON313")
    for candidate in _candidates():
        try:
            ok = subprocess.run([candidate, "-c", _CHECK], check=False, capture_output=True,
                                timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return Path(candidate)
        if candidate == chosen:
            raise RuntimeError(f"FIXENGINE_PYTHON313={chosen} is not Python 3.12 or newer with venv and ensurepip")
    raise RuntimeError(
        f"no Python 3.12 or newer (with venv and ensurepip) for the benchmark's peer {SDK}, which needs it: run "
        "scripts/bootstrap as root (it installs Debian's python3.13 and python3.13-venv where the release has "
        "them), install one with pyenv, or set FIXENGINE_PYTHON313 to an interpreter")


def cache_dir() -> Path:
    if os.environ.get("FIXENGINE_BENCH_CACHE"):
        return Path(os.environ["FIXENGINE_BENCH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fixengine" / "bench-peer"


def peer_python() -> Path:
    """The interpreter of a venv holding ``kalshi-sdk==SDK_VERSION``, made now if this machine has none."""
    base = base_python()
    tag = subprocess.run([str(base), "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
                         capture_output=True, text=True, check=True).stdout.strip()
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"{SDK_VERSION}-py{tag}"
    python, done = venv / "bin" / "python", venv / ".installed"
    with open(root / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two benchmark or test runs on one machine make it once
        if done.exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)  # what an interrupted run left
        made = subprocess.run([str(base), "-m", "venv", str(venv)], check=False, capture_output=True, text=True)
        if made.returncode != 0:
            raise RuntimeError(f"{base} -m venv {venv} failed (install its venv module, e.g. Debian's "
                               f"python3.X-venv):\n{(made.stdout + made.stderr).strip()}")
        try:
            pip = subprocess.run(
                [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--timeout",
                 str(PIP_TIMEOUT_S), "--retries", "2", f"{SDK}=={SDK_VERSION}"],
                check=False, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(venv, ignore_errors=True)
            raise RegistryUnreachable(f"pip did not finish installing {SDK}=={SDK_VERSION} into {venv} within "
                                      f"{INSTALL_TIMEOUT_S} s: is the package registry reachable?") from exc
        if pip.returncode != 0:
            said = (pip.stdout + pip.stderr).strip()
            shutil.rmtree(venv, ignore_errors=True)
            if any(marker in said for marker in UNREACHABLE_MARKERS):
                raise RegistryUnreachable(f"the package registry is unreachable: pip could not download "
                                          f"{SDK}=={SDK_VERSION} into {venv} ({said.splitlines()[-1]})")
            raise RuntimeError(f"pip could not install {SDK}=={SDK_VERSION} into {venv} (fix what pip says, "
                               f"or set FIXENGINE_PYTHON313 to another Python 3.12+):\n{said}")
        done.write_text(f"{SDK}=={SDK_VERSION}\n")
    return python


if __name__ == "__main__":
    try:
        print(peer_python())
    except RuntimeError as exc:
        sys.exit(f"peer_venv: {exc}")
