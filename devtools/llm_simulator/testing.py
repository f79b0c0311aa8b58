"""Helpers for tests: run the simulator in a subprocess and steer it over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from devtools.llm_simulator.server import READY_PREFIX

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_simulator(port: int, host: str = "127.0.0.1", timeout: float = 20.0) -> subprocess.Popen[bytes]:
    """Start the simulator and return once it listens; raise with its output if it does not."""
    # A file rather than a pipe: nobody drains the output after startup, and a full pipe would block the server.
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [sys.executable, "-m", "devtools.llm_simulator", "--host", host, "--port", str(port)],
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + timeout
        while True:
            output.seek(0)
            text = output.read().decode(errors="replace")
            if READY_PREFIX in text:
                return proc
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_simulator(proc)
                raise RuntimeError(f"LLM simulator did not start on {host}:{port}. Output:\n{text}")
            time.sleep(0.05)


def stop_simulator(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class SimulatorControl:
    """Client for the /_control endpoints."""

    def __init__(self, base_url: str) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=10.0)

    def reset(self) -> None:
        self._http.post("/_control/reset").raise_for_status()

    def set_scenario(self, model: str = "*", **fields: Any) -> dict[str, Any]:
        response = self._http.post("/_control/scenario", json={"model": model, **fields})
        if response.is_error:
            raise ValueError(f"Simulator rejected the scenario: {response.text}")
        result: dict[str, Any] = response.json()
        return result

    def requests(self) -> list[dict[str, Any]]:
        response = self._http.get("/_control/requests")
        response.raise_for_status()
        log: list[dict[str, Any]] = response.json()["requests"]
        return log

    def close(self) -> None:
        self._http.close()
