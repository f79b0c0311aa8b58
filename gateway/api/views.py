"""OpenAI-compatible endpoints on a tenant's domain. Every call goes through the gateway (policy, record),
in the tenant of the domain; errors use OpenAI's shape so its clients raise their usual exceptions."""

import base64
import json
import struct
import time
import uuid
from collections.abc import Iterator
from typing import Any, TypeVar

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from pydantic import BaseModel, ValidationError

from gateway.api.auth import ApiCaller, api_view, openai_error
from gateway.api.models_listing import allowed_models
from gateway.api.schemas import BadRequest, ChatCompletionRequest, EmbeddingRequest, bad_request_from
from gateway.embeddings import EMBEDDING_KIND, embed, model_kind
from gateway.errors import GatewayError
from gateway.service import complete
from gateway.streaming import StreamEvent, stream

MAX_BODY_BYTES = 1_000_000
Body = TypeVar("Body", bound=BaseModel)


def _bad_request(bad: BadRequest) -> JsonResponse:
    return openai_error(400, bad.message, error_type="invalid_request_error", param=bad.param)


def _too_large() -> JsonResponse:
    return openai_error(
        413,
        f"The request body is larger than {MAX_BODY_BYTES:,} bytes.",
        error_type="invalid_request_error",
        code="request_too_large",
    )


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


def _parsed_body(request: HttpRequest, schema: type[Body]) -> Body | JsonResponse:
    """The body validated by `schema`, or the error response (413 too large, 400 otherwise)."""
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return _too_large()  # refused before reading it
    try:
        raw = request.body  # a chunked body is limited by Django (DATA_UPLOAD_MAX_MEMORY_SIZE) as it is read
    except RequestDataTooBig:
        return _too_large()
    if len(raw) > MAX_BODY_BYTES:
        return _too_large()
    try:
        return schema.model_validate_json(raw or b"null")
    except ValidationError as invalid:
        return _bad_request(bad_request_from(invalid))


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
    body = _parsed_body(request, ChatCompletionRequest)
    if isinstance(body, JsonResponse):
        return body
    model, messages, max_tokens = body.model, body.messages_for_model(), body.answer_limit
    caller, tenant_schema = _caller(request), _tenant_schema(request)
    if _outside_key_scope(caller, model):
        return _model_not_found(model)
    if model_kind(model) == EMBEDDING_KIND:
        return _bad_request(BadRequest(f"'{model}' is an embedding model; use /v1/embeddings.", "model"))

    request_id = uuid.uuid4()
    if body.stream:
        return _stream_completion(
            tenant_schema, request_id, caller, model, messages, max_tokens, body.include_usage
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


def _encode_vector(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        # OpenAI's format: little-endian float32, base64 (what the official client asks for by default).
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


@api_view
def embeddings(request: HttpRequest) -> HttpResponseBase:
    if request.method != "POST":
        return openai_error(405, "Use POST for /v1/embeddings.", error_type="invalid_request_error")
    body = _parsed_body(request, EmbeddingRequest)
    if isinstance(body, JsonResponse):
        return body
    model, inputs, encoding, dimensions = body.model, body.input, body.encoding_format, body.dimensions
    caller, tenant_schema = _caller(request), _tenant_schema(request)
    if _outside_key_scope(caller, model):
        return _model_not_found(model)
    if model in allowed_models(tenant_schema) and model_kind(model) != EMBEDDING_KIND:
        return _bad_request(BadRequest(f"'{model}' is not an embedding model.", "model"))
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
