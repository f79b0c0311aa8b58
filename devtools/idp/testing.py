"""Start and stop the development IdP from tests (also meant for the main suite's conftest).

Usage::

    proc, issuer = start_idp(port, tmp_path / "idp", [callback], [after_logout])
    try:
        ...
    finally:
        stop_idp(proc)
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from devtools.idp import config

DEMO_USERS_FILE = config.USERS_FILE
DEMO_PASSWORD = "convosuite-demo"
CLIENT_ID = config.CLIENT_ID
CLIENT_SECRET = config.CLIENT_SECRET
READY_PREFIX = "IDP ready on "


def start_idp(
    port: int,
    data_dir: Path | str,
    redirect_uris: list[str],
    post_logout_uris: list[str],
    users_file: Path | str = DEMO_USERS_FILE,
    *,
    host: str = "127.0.0.1",
    issuer: str | None = None,
    client_id: str = CLIENT_ID,
    client_secret: str = CLIENT_SECRET,
    service_clients: list[str] | None = None,
    tenant_hosts: list[str] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> tuple[subprocess.Popen, str]:
    """Run ``python -m devtools.idp`` and return ``(process, issuer)`` once it is listening.

    Raises RuntimeError, with everything the process printed, if it exits or does not
    become ready within ``timeout`` seconds. ``idp_output(process)`` returns what it has printed.
    """
    issuer = issuer or f"http://{host}:{port}/o"
    cmd = [
        sys.executable, "-m", "devtools.idp",
        "--host", host, "--port", str(port),
        "--users", str(users_file), "--data-dir", str(data_dir),
        "--issuer", issuer,
        "--client-id", client_id, "--client-secret", client_secret,
    ]  # fmt: skip
    cmd += [arg for uri in redirect_uris for arg in ("--redirect-uri", uri)]
    cmd += [arg for uri in post_logout_uris for arg in ("--post-logout-redirect-uri", uri)]
    # CLIENT_ID:SECRET:TENANT:ROLE[,ROLE], in addition to the demo service clients file.
    cmd += [arg for spec in service_clients or [] for arg in ("--service-client", spec)]
    if tenant_hosts:
        cmd += ["--tenant-hosts", " ".join(tenant_hosts)]

    proc = subprocess.Popen(  # noqa: S603 - fixed argv built from our own parameters
        cmd,
        cwd=config.REPO_ROOT,
        env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    ready = threading.Event()

    def pump():
        # Keep draining for the process's whole life: a full pipe would block the server.
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if line.startswith(READY_PREFIX):
                ready.set()

    reader = threading.Thread(target=pump, name=f"idp-output-{port}", daemon=True)
    reader.start()
    proc.output = output  # type: ignore[attr-defined]
    proc.output_reader = reader  # type: ignore[attr-defined]

    deadline = time.monotonic() + timeout
    while not ready.wait(0.05):
        if proc.poll() is not None or time.monotonic() > deadline:
            reason = f"exited with code {proc.returncode}" if proc.returncode is not None else "timed out"
            stop_idp(proc)
            raise RuntimeError(f"dev IdP {reason} before it was ready:\n{idp_output(proc)}")
    return proc, issuer


def idp_output(proc: subprocess.Popen) -> str:
    """Everything a process started by start_idp has printed so far."""
    return "".join(getattr(proc, "output", []))


def stop_idp(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop the IdP (SIGTERM, then SIGKILL if it lingers) and wait for it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    reader = getattr(proc, "output_reader", None)
    if reader is not None:
        reader.join(timeout)
