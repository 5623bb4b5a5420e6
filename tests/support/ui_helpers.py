"""Start the Streamlit app (and the JSON API) on free 127.0.0.1 ports; drive them with Debian's Chromium.

Never `playwright install`: the browser is Debian's `chromium` package.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "ui" / "app.py"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _serve(cmd: list[str], env: dict[str, str], health: str, log_path: Path, timeout: float) -> Iterator[None]:
    """Run cmd with env added until the block ends; returns once `health` answers 200."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env, "PYTHONUNBUFFERED": "1"}, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{cmd[2:4]} exited with {proc.returncode}; see {log_path}")
                try:
                    if httpx.get(health, timeout=5.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{cmd[2:4]} was not ready in {timeout} s; see {log_path}")
                time.sleep(0.2)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def streamlit_app(env: dict[str, str], log_path: Path, timeout: float = 60.0) -> Iterator[str]:
    """`streamlit run ui/app.py` (flags as `drugrag ui` plus test settings); yields the base URL once healthy."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--server.runOnSave", "false"]
    url = f"http://127.0.0.1:{port}"
    with _serve(cmd, env, f"{url}/_stcore/health", log_path, timeout):
        yield url


@contextmanager
def api_server(env: dict[str, str], log_path: Path, timeout: float = 90.0) -> Iterator[str]:
    """`drugrag serve` (the JSON API); yields its base URL once /healthz answers 200."""
    port = free_port()
    cmd = [sys.executable, "-m", "rag.apps.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with _serve(cmd, env, f"{url}/healthz", log_path, timeout):
        yield url


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
