"""OpenAI-compatible endpoints on a tenant's domain. Every call goes through the gateway (policy, record),
in the tenant of the domain; errors use OpenAI's shape so its clients raise their usual exceptions."""

import base64
import json
import struct
import time
import uuid
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from gateway.api.auth import ApiCaller, api_view, openai_error
from gateway.api.models_listing import allowed_models
from gateway.embeddings import EMBEDDING_KIND, embed, model_kind
from gateway.errors import GatewayError
from gateway.service import complete
from gateway.streaming import StreamEvent, stream

MAX_BODY_BYTES = 1_000_000
MAX_EMBEDDING_INPUTS = 256
MESSAGE_ROLES = {"system", "developer", "user", "assistant"}
# Parameters we cannot honour yet. Refused rather than silently ignored: a caller relying on them must know.
UNSUPPORTED_CHAT_PARAMS = (
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "response_format",
    "logprobs",
)


class BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def response(self) -> JsonResponse:
        return openai_error(400, self.message, error_type="invalid_request_error", param=self.param)


def _gateway_error_response(error: GatewayError) -> JsonResponse:
    response = JsonResponse(error.as_openai_error(), status=error.status_code)
    if error.call is not None:
        # Refusals and failures are recorded too: the id finds the record in the tenant's model-call log.
        response["X-Request-Id"] = str(error.call.request_id)
    return response


def _model_not_found(model: str) -> JsonResponse:
    return openai_error(
        404,
        f"The model '{model}' does not exist or you do not have access to it.",
        error_type="invalid_request_error",
        code="model_not_found",
        param="model",
    )


def _json_body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > MAX_BODY_BYTES:
        raise BadRequest(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def _model_param(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("'model' is required and must be a string.", "model")
    return model.strip()


def _message_text(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise BadRequest(f"messages[{index}].content: only text parts are supported.", "messages")
            texts.append(part["text"])
        return "".join(texts)
    raise BadRequest(f"messages[{index}].content must be a string or a list of text parts.", "messages")


def _messages_param(body: dict[str, Any]) -> list[dict[str, str]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list.", "messages")
    parsed = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{index}] must be an object.", "messages")
        role = message.get("role")
        if role not in MESSAGE_ROLES:
            raise BadRequest(
                f"messages[{index}].role must be one of {', '.join(sorted(MESSAGE_ROLES))}.", "messages"
            )
        # Our models know "system"; OpenAI's newer "developer" role means the same.
        parsed.append(
            {
                "role": "system" if role == "developer" else role,
                "content": _message_text(message.get("content"), index),
            }
        )
    return parsed


def _max_tokens_param(body: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadRequest(f"'{name}' must be a positive integer.", name)
        return value
    return None


def _outside_key_scope(caller: ApiCaller, model: str) -> bool:
    # Only the credential's own scope is checked here: models the tenant may not use are refused (and the
    # refusal recorded) by the gateway itself.
    return caller.model_scope is not None and model not in caller.model_scope


def _caller(request: HttpRequest) -> ApiCaller:
    return request.api_caller  # type: ignore[attr-defined,no-any-return]


def _tenant_schema(request: HttpRequest) -> str:
    return str(request.tenant.schema_name)  # type: ignore[attr-defined]


@api_view
def chat_completions(request: HttpRequest) -> HttpResponseBase:
    if request.method != "POST":
        return openai_error(405, "Use POST for /v1/chat/completions.", error_type="invalid_request_error")
    try:
        body = _json_body(request)
        model = _model_param(body)
        messages = _messages_param(body)
        max_tokens = _max_tokens_param(body)
        for name in UNSUPPORTED_CHAT_PARAMS:
            if body.get(name) not in (None, [], {}):
                raise BadRequest(f"'{name}' is not supported by this API yet.", name)
        if body.get("n") not in (None, 1):
            raise BadRequest("Only n=1 is supported.", "n")
        streaming = body.get("stream", False)
        if not isinstance(streaming, bool):
            raise BadRequest("'stream' must be true or false.", "stream")
        stream_options = body.get("stream_options") or {}
        if not isinstance(stream_options, dict):
            raise BadRequest("'stream_options' must be an object.", "stream_options")
    except BadRequest as bad:
        return bad.response()
    caller, tenant_schema = _caller(request), _tenant_schema(request)
    if _outside_key_scope(caller, model):
        return _model_not_found(model)
    if model_kind(model) == EMBEDDING_KIND:
        return BadRequest(f"'{model}' is an embedding model; use /v1/embeddings.", "model").response()

    request_id = uuid.uuid4()
    if streaming:
        return _stream_completion(
            tenant_schema,
            request_id,
            caller,
            model,
            messages,
            max_tokens,
            bool(stream_options.get("include_usage")),
        )
    try:
        completion = complete(
            tenant_schema=tenant_schema,
            request_id=request_id,
            user_id=caller.user_id,
            model=model,
            messages=messages,
            max_tokens=max_tokens,
            source=caller.source,
            api_key=caller.key_limits,
        )
    except GatewayError as error:
        return _gateway_error_response(error)
    response = JsonResponse(
        {
            "id": f"chatcmpl-{request_id.hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": completion.text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(completion.tokens_in, completion.tokens_out),
        }
    )
    response["X-Request-Id"] = str(request_id)
    return response


def _usage(tokens_in: int, tokens_out: int) -> dict[str, int]:
    return {
        "prompt_tokens": tokens_in,
        "completion_tokens": tokens_out,
        "total_tokens": tokens_in + tokens_out,
    }


def _stream_completion(
    tenant_schema: str,
    request_id: uuid.UUID,
    caller: ApiCaller,
    model: str,
    messages: list[dict[str, str]],
    max_tokens: int | None,
    include_usage: bool,
) -> HttpResponseBase:
    events = stream(
        tenant_schema=tenant_schema,
        request_id=request_id,
        user_id=caller.user_id,
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        source=caller.source,
        api_key=caller.key_limits,
    )
    try:
        # Refusals and an unreachable provider surface before the first token: answer them with a status.
        first = next(events)
    except GatewayError as error:
        return _gateway_error_response(error)
    response = StreamingHttpResponse(
        _sse_chunks(events, first, request_id, model, include_usage), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    response["X-Request-Id"] = str(request_id)
    return response


def _sse_chunks(
    events: Iterator[StreamEvent], first: StreamEvent, request_id: uuid.UUID, model: str, include_usage: bool
) -> Iterator[str]:
    created = int(time.time())

    def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
        body: dict[str, Any] = {
            "id": f"chatcmpl-{request_id.hex}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices,
        }
        if include_usage:
            body["usage"] = usage
        return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"

    def delta(content: dict[str, Any], finish_reason: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish_reason}]

    try:
        yield chunk(delta({"role": "assistant", "content": ""}))
        for event in _chain(first, events):
            if event.kind == "token":
                yield chunk(delta({"content": event.text}))
                continue
            result = event.result
            if result is None or result.error is not None:
                error = result.error if result is not None else None
                # OpenAI's clients raise an APIError for an "error" event in the middle of a stream.
                body = (
                    error.as_openai_error()
                    if error
                    else {
                        "error": {
                            "message": "The stream failed.",
                            "type": "api_error",
                            "param": None,
                            "code": None,
                        }
                    }
                )
                yield f"data: {json.dumps(body, separators=(',', ':'))}\n\n"
                return
            yield chunk(delta({}, result.finish_reason or "stop"))
            if include_usage:
                yield chunk([], _usage(result.tokens_in, result.tokens_out))
            yield "data: [DONE]\n\n"
    finally:
        # The client went away (or we are done): closing the gateway's stream records a cut-off call.
        close = getattr(events, "close", None)
        if callable(close):
            close()


def _chain(first: StreamEvent, rest: Iterator[StreamEvent]) -> Iterator[StreamEvent]:
    yield first
    yield from rest


def _embedding_inputs(body: dict[str, Any]) -> list[str]:
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("'input' must be a non-empty string or list of strings.", "input")
    if len(inputs) > MAX_EMBEDDING_INPUTS:
        raise BadRequest(f"At most {MAX_EMBEDDING_INPUTS} inputs per request.", "input")
    if not all(isinstance(text, str) and text for text in inputs):
        raise BadRequest("Every input must be a non-empty string (token arrays are not supported).", "input")
    return inputs


def _encode_vector(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        # OpenAI's format: little-endian float32, base64 (what the official client asks for by default).
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


@api_view
def embeddings(request: HttpRequest) -> HttpResponseBase:
    if request.method != "POST":
        return openai_error(405, "Use POST for /v1/embeddings.", error_type="invalid_request_error")
    try:
        body = _json_body(request)
        model = _model_param(body)
        inputs = _embedding_inputs(body)
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise BadRequest("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
        dimensions = body.get("dimensions")
        if dimensions is not None and (
            isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
        ):
            raise BadRequest("'dimensions' must be a positive integer.", "dimensions")
    except BadRequest as bad:
        return bad.response()
    caller, tenant_schema = _caller(request), _tenant_schema(request)
    if _outside_key_scope(caller, model):
        return _model_not_found(model)
    if model in allowed_models(tenant_schema) and model_kind(model) != EMBEDDING_KIND:
        return BadRequest(f"'{model}' is not an embedding model.", "model").response()
    request_id = uuid.uuid4()
    try:
        result = embed(
            tenant_schema=tenant_schema,
            request_id=request_id,
            user_id=caller.user_id,
            model=model,
            inputs=inputs,
            dimensions=dimensions,
            source=caller.source,
            api_key=caller.key_limits,
        )
    except GatewayError as error:
        return _gateway_error_response(error)
    response = JsonResponse(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": index, "embedding": _encode_vector(vector, encoding)}
                for index, vector in enumerate(result.vectors)
            ],
            "model": model,
            "usage": {"prompt_tokens": result.tokens_in, "total_tokens": result.tokens_in},
        }
    )
    response["X-Request-Id"] = str(request_id)
    return response


def _model_entry(alias: str) -> dict[str, Any]:
    return {"id": alias, "object": "model", "created": 0, "owned_by": "convosuite"}


def _visible_models(request: HttpRequest) -> list[str]:
    scope = _caller(request).model_scope
    return [alias for alias in allowed_models(_tenant_schema(request)) if scope is None or alias in scope]


@api_view
def list_models(request: HttpRequest) -> HttpResponseBase:
    if request.method != "GET":
        return openai_error(405, "Use GET for /v1/models.", error_type="invalid_request_error")
    return JsonResponse(
        {"object": "list", "data": [_model_entry(alias) for alias in _visible_models(request)]}
    )


@api_view
def retrieve_model(request: HttpRequest, model: str) -> HttpResponseBase:
    if request.method != "GET":
        return openai_error(405, "Use GET for /v1/models/{model}.", error_type="invalid_request_error")
    if model not in _visible_models(request):
        return _model_not_found(model)
    return JsonResponse(_model_entry(model))


@api_view
def not_found(request: HttpRequest, path: str = "") -> HttpResponseBase:
    return openai_error(404, f"Unknown API path: {request.path}", error_type="invalid_request_error")
