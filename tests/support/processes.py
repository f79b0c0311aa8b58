"""Real processes for the tests: the web server and a Celery worker, each in its own process, against the
test database. (The identity provider and the provider simulator have their own helpers in devtools/.)"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
# Under pytest-xdist each worker has its own processes, so its own log folder (the readiness check reads them).
LOG_DIR = REPO_ROOT / "test-artifacts" / "logs" / os.environ.get("PYTEST_XDIST_WORKER", "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn(name: str, args: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = open(LOG_DIR / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        args,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def log_tail(name: str, lines: int = 40) -> str:
    path = LOG_DIR / f"{name}.log"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _wait(name: str, process: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log_tail(name)}")
        if ready():
            return
        time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"{name} did not become ready in {timeout}s:\n{log_tail(name)}")


def start_web(port: int, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    process = _spawn(
        "web",
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"],
        env,
    )

    def ready() -> bool:
        try:
            return (
                requests.get(f"http://127.0.0.1:{port}/", timeout=1, allow_redirects=False).status_code < 500
            )
        except requests.RequestException:
            return False

    _wait("web", process, ready, timeout=60)
    return process


def start_worker(
    name: str,
    env: Mapping[str, str],
    concurrency: int = 2,
    extra_args: tuple[str, ...] = (),
    queues: str | None = None,
) -> subprocess.Popen[bytes]:
    process = _spawn(
        name,
        [
            sys.executable, "-m", "celery", "-A", "convosuite", "worker",
            "--loglevel", "INFO", "--concurrency", str(concurrency), "--hostname", f"{name}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat", *extra_args,
            *(["--queues", queues] if queues else []),
        ],
        env,
    )  # fmt: skip
    _wait(name, process, lambda: " ready." in log_tail(name, 200), timeout=90)
    return process


def stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, 15)
        process.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, 9)
        except ProcessLookupError:
            pass
        process.wait(timeout=5)


def spawn(name: str, args: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Another real process for a test (own session, log in test-artifacts/logs/<name>.log)."""
    return _spawn(name, args, env)


def wait_until_ready(
    name: str, process: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float
) -> None:
    _wait(name, process, ready, timeout)
