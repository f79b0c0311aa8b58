"""Starlette app that imitates an OpenAI-compatible vendor; tests steer it through /_control/*."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import math
import random
import re
import struct
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

# server.py puts the connection's asyncio transport here so a scenario can drop the connection.
TRANSPORT_SCOPE_KEY = "llm_simulator.transport"

FAILURES = {"429", "500", "503", "timeout", "disconnect"}
DEFAULT_MODELS = ("sim-model", "sim-embedding")
HANG_SECONDS = 600.0  # longer than any sane client timeout

JSONDict = dict[str, Any]


def _tool_call(index: int, spec: JSONDict) -> JSONDict:
    """Accept either OpenAI's full shape or a shorthand {"name", "arguments"}."""
    function = spec.get("function", spec)
    if not isinstance(function, dict) or not function.get("name"):
        raise ValueError("each tool call needs a function name")
    arguments = function.get("arguments", {})
    return {
        "id": spec.get("id", f"call_sim_{index}"),
        "type": "function",
        "function": {
            "name": function["name"],
            "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
        },
    }


@dataclass
class Scenario:
    reply: str | None = None
    reply_mode: str | None = None  # None (default sentence) | "echo"
    served_model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int = 0
    token_delay_ms: int = 0
    fail: str | None = None
    fail_times: int | None = None
    retry_after: int = 1
    fail_after_chunks: int | None = None
    tool_calls: list[JSONDict] | None = None
    dimensions: int = 384
    failures_left: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.fail is not None:
            self.fail = str(self.fail)  # accept 429 as well as "429"
            if self.fail not in FAILURES:
                raise ValueError(f"fail must be one of {sorted(FAILURES)} or null")
        if self.reply_mode not in (None, "default", "echo"):
            raise ValueError("reply_mode must be 'echo', 'default' or null")
        if self.tool_calls is not None:
            self.tool_calls = [_tool_call(i, spec) for i, spec in enumerate(self.tool_calls)]
        self.failures_left = self.fail_times

    def consume_failure(self) -> bool:
        """Whether this request should fail; spends one of fail_times when it is limited."""
        if self.failures_left is None:
            return True
        if self.failures_left <= 0:
            return False
        self.failures_left -= 1
        return True


class SimulatorState:
    # No lock: handlers only touch state between awaits on the single event loop, so updates are atomic.
    def __init__(self) -> None:
        self.scenarios: dict[str, Scenario] = {}
        self.log: list[JSONDict] = []

    def reset(self) -> None:
        self.scenarios.clear()
        self.log.clear()

    def scenario_for(self, model: str) -> Scenario:
        return self.scenarios.get(model) or self.scenarios.get("*") or Scenario()

    def record(self, request: Request, body: JSONDict | None) -> None:
        headers = {k: ("<redacted>" if k == "authorization" else v) for k, v in request.headers.items()}
        self.log.append(
            {
                "method": request.method,
                "path": request.url.path,
                "model": (body or {}).get("model"),
                "body": body,
                "headers": headers,
                "timestamp": time.time(),
            }
        )


def _state(request: Request) -> SimulatorState:
    state: SimulatorState = request.app.state.sim
    return state


def openai_error(
    status: int,
    message: str,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _wait_for_disconnect(request: Request, timeout: float) -> None:
    # After the body is read, uvicorn's receive() blocks until the client goes away.
    async def wait() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wait(), timeout)


async def _drop_connection(request: Request) -> None:
    request.scope[TRANSPORT_SCOPE_KEY].abort()
    # Wait until uvicorn has seen the loss, otherwise it would answer with a 500 of its own.
    await _wait_for_disconnect(request, 5.0)


async def _injected_failure(request: Request, scenario: Scenario) -> Response:
    if scenario.fail == "429":
        return openai_error(
            429,
            "Rate limit reached (simulated).",
            "requests",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(scenario.retry_after)},
        )
    if scenario.fail == "500":
        return openai_error(
            500, "The server had an error while processing your request (simulated).", "server_error"
        )
    if scenario.fail == "503":
        return openai_error(503, "The engine is currently overloaded (simulated).", "server_error")
    if scenario.fail == "timeout":
        await _wait_for_disconnect(request, HANG_SECONDS)
        return openai_error(504, "Simulated timeout.", "server_error")
    await _drop_connection(request)
    return Response(status_code=499)  # never reaches the client: the connection is gone


VendorHandler = Callable[[Request, JSONDict, Scenario], Awaitable[Response]]


def vendor_endpoint(handler: VendorHandler) -> Callable[[Request], Awaitable[Response]]:
    """Shared vendor behaviour: request log, bearer auth, latency and injected failures."""

    async def endpoint(request: Request) -> Response:
        body: JSONDict | None = {}
        if request.method == "POST":
            try:
                body = await request.json()
            except ValueError:
                body = None
        state = _state(request)
        state.record(request, body if isinstance(body, dict) else None)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return openai_error(
                401,
                "You didn't provide an API key (simulated).",
                "invalid_request_error",
                code="invalid_api_key",
            )
        if not isinstance(body, dict):
            return openai_error(400, "The request body is not valid JSON.", "invalid_request_error")
        scenario = state.scenario_for(str(body.get("model", "")))
        if scenario.latency_ms:
            await asyncio.sleep(scenario.latency_ms / 1000)
        if scenario.fail is not None and scenario.consume_failure():
            return await _injected_failure(request, scenario)
        return await handler(request, body, scenario)

    return endpoint


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal content parts
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _word_count(text: str) -> int:
    return max(1, len(text.split()))


def _reply_text(scenario: Scenario, messages: list[Any]) -> str | None:
    last_user = next(
        (
            _text(m.get("content"))
            for m in reversed(messages)
            if isinstance(m, dict) and m.get("role") == "user"
        ),
        "",
    )
    if scenario.reply is not None:
        return scenario.reply
    if scenario.reply_mode == "echo":
        return f"Echo: {last_user}"
    if scenario.tool_calls:
        return None  # like OpenAI, a pure tool call carries no text
    return f"This is a simulated reply to: {last_user[:40]}"


@dataclass
class Completion:
    meta: JSONDict  # id, created, model, system_fingerprint: shared by the response and every chunk
    content: str | None
    pieces: list[str]  # word-sized "tokens"; joined they give content
    tool_calls: list[JSONDict] | None
    finish_reason: str
    usage: JSONDict


def _build_completion(body: JSONDict, scenario: Scenario, messages: list[Any]) -> Completion:
    content = _reply_text(scenario, messages)
    pieces = re.findall(r"\s*\S+", content or "")
    finish_reason = "tool_calls" if scenario.tool_calls else "stop"
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and 0 < limit < len(pieces):
        pieces = pieces[:limit]
        content = "".join(pieces)
        finish_reason = "length"
    prompt_tokens = scenario.prompt_tokens
    if prompt_tokens is None:
        prompt_tokens = max(
            1, sum(len(_text(m.get("content")).split()) for m in messages if isinstance(m, dict))
        )
    completion_tokens = scenario.completion_tokens
    if completion_tokens is None:
        completion_tokens = max(1, len(pieces))
    return Completion(
        meta={
            "id": f"chatcmpl-sim-{uuid.uuid4().hex[:24]}",
            "created": int(time.time()),
            "model": scenario.served_model or body["model"],
            "system_fingerprint": "fp_llm_simulator",
        },
        content=content,
        pieces=pieces,
        tool_calls=scenario.tool_calls,
        finish_reason=finish_reason,
        usage={
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    )


def _stream_chunks(c: Completion, include_usage: bool) -> list[JSONDict]:
    def chunk(delta: JSONDict, finish_reason: str | None = None) -> JSONDict:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        out: JSONDict = {**c.meta, "object": "chat.completion.chunk", "choices": [choice]}
        if include_usage:
            out["usage"] = None  # OpenAI sends null usage on every chunk but the last
        return out

    chunks = [chunk({"role": "assistant", "content": "" if c.content is not None else None})]
    chunks += [chunk({"content": piece}) for piece in c.pieces]
    if c.tool_calls:
        chunks.append(chunk({"tool_calls": [{"index": i, **call} for i, call in enumerate(c.tool_calls)]}))
    chunks.append(chunk({}, c.finish_reason))
    if include_usage:
        chunks.append({**c.meta, "object": "chat.completion.chunk", "choices": [], "usage": c.usage})
    return chunks


async def _sse(
    request: Request, chunks: list[JSONDict], token_delay_ms: int, cut_after: int | None
) -> AsyncIterator[str]:
    events = [f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n" for chunk in chunks] + [
        "data: [DONE]\n\n"
    ]
    for i, event in enumerate(events):
        if cut_after is not None and i >= cut_after:
            await _drop_connection(request)
            return
        if i and token_delay_ms:
            await asyncio.sleep(token_delay_ms / 1000)
        yield event


async def chat_completions(request: Request, body: JSONDict, scenario: Scenario) -> Response:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return openai_error(
            400, "'messages' must be a non-empty list.", "invalid_request_error", param="messages"
        )
    if not body.get("model"):
        return openai_error(400, "'model' is required.", "invalid_request_error", param="model")
    c = _build_completion(body, scenario, messages)
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        # A mid-stream cut spends the same fail_times budget as an up-front failure.
        cut = scenario.fail_after_chunks is not None and scenario.consume_failure()
        return StreamingResponse(
            _sse(
                request,
                _stream_chunks(c, include_usage),
                scenario.token_delay_ms,
                scenario.fail_after_chunks if cut else None,
            ),
            media_type="text/event-stream",
        )
    message: JSONDict = {"role": "assistant", "content": c.content, "refusal": None}
    if c.tool_calls:
        message["tool_calls"] = c.tool_calls
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": c.finish_reason}
    return JSONResponse({**c.meta, "object": "chat.completion", "choices": [choice], "usage": c.usage})


def _embedding(text: str, dims: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    vector = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


async def embeddings(request: Request, body: JSONDict, scenario: Scenario) -> Response:
    raw = body.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw)):
        raw = [raw]  # a single text or a single token array
    if not isinstance(raw, list) or not raw:
        return openai_error(
            400, "'input' must be a string or a non-empty list.", "invalid_request_error", param="input"
        )
    texts = [item if isinstance(item, str) else " ".join(map(str, item)) for item in raw]
    dims = body.get("dimensions") or scenario.dimensions
    if not isinstance(dims, int) or dims <= 0:
        return openai_error(
            400, "'dimensions' must be a positive integer.", "invalid_request_error", param="dimensions"
        )
    # The official openai client asks for base64 unless told otherwise.
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for i, text in enumerate(texts):
        vector = _embedding(text, dims)
        value: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": i, "embedding": value})
    tokens = scenario.prompt_tokens
    if tokens is None:
        tokens = sum(_word_count(text) for text in texts)
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "model": scenario.served_model or body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


async def list_models(request: Request, body: JSONDict, scenario: Scenario) -> Response:
    scenarios = _state(request).scenarios
    names = set(DEFAULT_MODELS) | {m for m in scenarios if m != "*"}
    names |= {s.served_model for s in scenarios.values() if s.served_model}
    models = [
        {"id": name, "object": "model", "created": 0, "owned_by": "llm-simulator"} for name in sorted(names)
    ]
    return JSONResponse({"object": "list", "data": models})


async def control_scenario(request: Request) -> Response:
    try:
        fields = await request.json()
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        return openai_error(400, "Send a JSON object.", "invalid_request_error")
    model = str(fields.pop("model", "*"))
    try:
        scenario = Scenario(**fields)
    except (TypeError, ValueError) as exc:
        return openai_error(400, f"Invalid scenario: {exc}", "invalid_request_error")
    _state(request).scenarios[model] = scenario
    return JSONResponse({"model": model, "scenario": asdict(scenario)})


async def control_reset(request: Request) -> Response:
    _state(request).reset()
    return JSONResponse({"ok": True})


async def control_requests(request: Request) -> Response:
    return JSONResponse({"requests": _state(request).log})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return openai_error(exc.status_code, str(exc.detail), "invalid_request_error")


def create_app() -> Starlette:
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", vendor_endpoint(chat_completions), methods=["POST"]),
            Route("/v1/embeddings", vendor_endpoint(embeddings), methods=["POST"]),
            Route("/v1/models", vendor_endpoint(list_models), methods=["GET"]),
            Route("/_control/scenario", control_scenario, methods=["POST"]),
            Route("/_control/reset", control_reset, methods=["POST"]),
            Route("/_control/requests", control_requests, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.sim = SimulatorState()
    return app
