"""The LLM simulator, exercised through the real openai and LiteLLM clients."""

from __future__ import annotations

import importlib
import math
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from devtools.llm_simulator.testing import SimulatorControl, free_port, start_simulator, stop_simulator

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    port = free_port()
    proc = start_simulator(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_simulator(proc)


@pytest.fixture
def control(base_url: str) -> Iterator[SimulatorControl]:
    ctl = SimulatorControl(base_url)
    ctl.reset()
    yield ctl
    ctl.close()


@pytest.fixture
def oai(base_url: str) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"{base_url}/v1", api_key="test-key", max_retries=0, timeout=5) as c:
        yield c


@pytest.fixture(scope="module")
def litellm() -> ModuleType:
    # Without this LiteLLM tries to download its price map at import time, which is slow offline.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    return importlib.import_module("litellm")


def test_chat_completion(oai: OpenAI, control: SimulatorControl) -> None:
    response = oai.chat.completions.create(model="sim-model", messages=USER)

    assert response.id.startswith("chatcmpl-")
    assert response.object == "chat.completion"
    assert response.model == "sim-model"
    assert response.system_fingerprint
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert "What is the capital of France?" in (choice.message.content or "")
    assert choice.finish_reason == "stop"
    assert response.usage is not None
    assert response.usage.prompt_tokens == 6
    assert response.usage.completion_tokens == len((choice.message.content or "").split())
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_stream_with_usage_chunk(oai: OpenAI, control: SimulatorControl) -> None:
    control.set_scenario(reply="Paris is the capital.", prompt_tokens=11, completion_tokens=4)

    chunks = list(
        oai.chat.completions.create(
            model="sim-model", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Paris is the capital."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (11, 4, 15)
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_include_usage_has_no_usage_chunk(oai: OpenAI, control: SimulatorControl) -> None:
    chunks = list(oai.chat.completions.create(model="sim-model", messages=USER, stream=True))
    assert all(c.choices and c.usage is None for c in chunks)


def test_embeddings_are_deterministic_unit_vectors(oai: OpenAI, control: SimulatorControl) -> None:
    first = oai.embeddings.create(model="sim-embedding", input=["alpha beta", "gamma"])
    again = oai.embeddings.create(model="sim-embedding", input="alpha beta")

    vectors = [d.embedding for d in first.data]
    assert [len(v) for v in vectors] == [384, 384]
    assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-5) for v in vectors)
    assert again.data[0].embedding == vectors[0]
    assert vectors[0] != vectors[1]
    assert first.usage.prompt_tokens == 3

    control.set_scenario(dimensions=8)
    small = oai.embeddings.create(model="sim-embedding", input="alpha beta", encoding_format="float")
    assert len(small.data[0].embedding) == 8


def test_rate_limit_is_a_rate_limit_error(oai: OpenAI, control: SimulatorControl) -> None:
    control.set_scenario(fail="429", retry_after=7)

    with pytest.raises(openai.RateLimitError) as excinfo:
        oai.chat.completions.create(model="sim-model", messages=USER)

    assert excinfo.value.status_code == 429
    assert excinfo.value.response.headers["retry-after"] == "7"
    assert excinfo.value.code == "rate_limit_exceeded"


def test_fail_times_then_recovers(oai: OpenAI, control: SimulatorControl) -> None:
    control.set_scenario(fail="503", fail_times=2)

    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            oai.chat.completions.create(model="sim-model", messages=USER)
    assert oai.chat.completions.create(model="sim-model", messages=USER).choices[0].message.content
    assert len(control.requests()) == 3


def test_scenarios_are_per_model(oai: OpenAI, control: SimulatorControl) -> None:
    control.set_scenario(model="broken-model", fail="500")

    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="broken-model", messages=USER)
    assert oai.chat.completions.create(model="sim-model", messages=USER).choices[0].message.content


def test_echo_mode(oai: OpenAI, control: SimulatorControl) -> None:
    control.set_scenario(reply_mode="echo")
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "say this back"},
    ]

    response = oai.chat.completions.create(model="sim-model", messages=messages)

    assert response.choices[0].message.content == "Echo: say this back"


def test_max_tokens_truncates_and_reports_length(oai: OpenAI, control: SimulatorControl) -> None:
    control.set_scenario(reply="one two three four five")

    response = oai.chat.completions.create(model="sim-model", messages=USER, max_tokens=2)

    assert response.choices[0].message.content == "one two"
    assert response.choices[0].finish_reason == "length"
    assert response.usage is not None and response.usage.completion_tokens == 2
    assert control.requests()[-1]["body"]["max_tokens"] == 2


def test_served_model_is_reported(oai: OpenAI, control: SimulatorControl) -> None:
    control.set_scenario(model="sim-model", served_model="sim-model-2026-01-01")

    assert oai.chat.completions.create(model="sim-model", messages=USER).model == "sim-model-2026-01-01"
    models = {m.id for m in oai.models.list()}
    assert {"sim-model", "sim-model-2026-01-01"} <= models


def test_tool_calls(oai: OpenAI, control: SimulatorControl) -> None:
    control.set_scenario(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])

    message = oai.chat.completions.create(model="sim-model", messages=USER).choices[0].message

    assert message.content is None
    assert message.tool_calls is not None
    call = message.tool_calls[0]
    assert call.type == "function"
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city": "Paris"}')


def test_request_log(oai: OpenAI, control: SimulatorControl) -> None:
    oai.chat.completions.create(model="sim-model", messages=USER, temperature=0.2)

    log = control.requests()
    assert len(log) == 1
    entry = log[0]
    assert (entry["method"], entry["path"], entry["model"]) == ("POST", "/v1/chat/completions", "sim-model")
    assert entry["body"]["temperature"] == 0.2
    assert entry["headers"]["authorization"] == "<redacted>"
    assert "test-key" not in str(entry)
    assert entry["timestamp"] <= time.time()

    control.reset()
    assert control.requests() == []


def test_missing_api_key_is_401_in_openai_format(base_url: str, control: SimulatorControl) -> None:
    response = httpx.post(f"{base_url}/v1/chat/completions", json={"model": "sim-model", "messages": USER})

    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_invalid_scenario_is_rejected(control: SimulatorControl) -> None:
    with pytest.raises(ValueError, match="fail must be one of"):
        control.set_scenario(fail="418")


def test_disconnect_and_timeout_are_connection_errors(oai: OpenAI, control: SimulatorControl) -> None:
    control.set_scenario(fail="disconnect", fail_times=1)
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(model="sim-model", messages=USER)

    control.set_scenario(fail="timeout")
    with pytest.raises(openai.APITimeoutError):
        oai.with_options(timeout=0.3).chat.completions.create(model="sim-model", messages=USER)


def test_stream_cut_after_chunks(oai: OpenAI, control: SimulatorControl) -> None:
    control.set_scenario(reply="a b c d e f", fail_after_chunks=3, fail_times=1)

    received: list[str] = []
    with pytest.raises((openai.APIConnectionError, httpx.TransportError)):
        for chunk in oai.chat.completions.create(model="sim-model", messages=USER, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "a b"

    # The budget is spent: the next stream completes.
    stream = oai.chat.completions.create(model="sim-model", messages=USER, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "a b c d e f"


def test_latency_does_not_serialise_requests(oai: OpenAI, control: SimulatorControl) -> None:
    control.set_scenario(latency_ms=300)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        replies = list(
            pool.map(lambda _: oai.chat.completions.create(model="sim-model", messages=USER), range(4))
        )
    elapsed = time.monotonic() - started

    assert len(replies) == 4
    assert 0.3 <= elapsed < 1.0


def test_litellm_completion(base_url: str, control: SimulatorControl, litellm: ModuleType) -> None:
    control.set_scenario(reply="Paris.", served_model="sim-model-2026-01-01")

    response = litellm.completion(
        model="openai/sim-model", api_base=f"{base_url}/v1", api_key="x", messages=USER
    )

    assert response.choices[0].message.content == "Paris."
    assert response.usage.prompt_tokens == 6
    assert response.usage.completion_tokens == 1
    assert [entry["model"] for entry in control.requests()] == ["sim-model"]


def test_litellm_stream_reports_usage(base_url: str, control: SimulatorControl, litellm: ModuleType) -> None:
    control.set_scenario(reply="Paris is lovely.", prompt_tokens=9, completion_tokens=3)

    chunks = list(
        litellm.completion(
            model="openai/sim-model",
            api_base=f"{base_url}/v1",
            api_key="x",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Paris is lovely."
    usages = [c.usage for c in chunks if getattr(c, "usage", None)]
    assert usages
    assert (usages[-1].prompt_tokens, usages[-1].completion_tokens) == (9, 3)
    assert control.requests()[0]["body"]["stream_options"] == {"include_usage": True}
