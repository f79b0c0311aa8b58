"""The request bodies of the tenant API (/v1), as pydantic models, and how a validation error becomes
OpenAI's error shape (400, `invalid_request_error`, `param` naming the field).

Bodies are parsed from the raw bytes by pydantic's JSON parser (jiter), which refuses what Python's json
module would let through and our stack cannot store: lone UTF-16 surrogates ("\\ud800"), invalid UTF-8,
and nesting deeper than its recursion limit (a RecursionError otherwise)."""

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

MAX_EMBEDDING_INPUTS = 256
MESSAGE_ROLES = ("system", "developer", "user", "assistant")
# Parameters we cannot honour yet. Refused rather than silently ignored: a caller relying on them must know.
UNSUPPORTED_CHAT_PARAMS = (
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "response_format",
    "logprobs",
)
# Model names are catalogue aliases: printable, no control characters (PostgreSQL text refuses NUL).
_MODEL_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,128}")


class BadRequest(Exception):
    """A request the API refuses with 400 (OpenAI's `invalid_request_error`); param names the field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def _sentence(message: str) -> PydanticCustomError:
    """An error told as a whole sentence ("'model' is required and must be a string.")."""
    return PydanticCustomError("sentence", message)


def _phrase(message: str) -> PydanticCustomError:
    """An error told after the field's path ("messages[2].role" + " must be one of ...")."""
    return PydanticCustomError("phrase", message)


def _model_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _sentence("'model' is required and must be a string.")
    name = value.strip()
    if not _MODEL_NAME.fullmatch(name):
        raise _sentence("'model' must be a model name: at most 128 characters, no control characters.")
    return name


def _positive_int(name: str) -> Any:
    def check(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _sentence(f"'{name}' must be a positive integer.")
        return value

    return BeforeValidator(check)


ModelName = Annotated[str, BeforeValidator(_model_name)]


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")  # e.g. "name": accepted, not used

    role: str
    content: str | list[TextPart]

    @field_validator("role", mode="before")
    @classmethod
    def _known_role(cls, role: Any) -> str:
        if role not in MESSAGE_ROLES:
            raise _phrase(f"must be one of {', '.join(sorted(MESSAGE_ROLES))}.")
        return str(role)

    @field_validator("content", mode="before")
    @classmethod
    def _text_only(cls, content: Any) -> Any:
        if isinstance(content, str):
            return content
        if isinstance(content, list) and all(
            isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
            for part in content
        ):
            return content
        if isinstance(content, list):
            raise _phrase("may hold text parts only (type 'text').")
        raise _phrase("must be a string or a list of text parts.")

    def for_model(self) -> dict[str, str]:
        """The message as the gateway sends it: text joined; OpenAI's newer "developer" role is "system"."""
        text = self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: StrictBool = False


class ChatCompletionRequest(BaseModel):
    """POST /v1/chat/completions. Sampling parameters (temperature, top_p, seed, stop, ...) are accepted
    and not passed on (extra fields are ignored); the ones in UNSUPPORTED_CHAT_PARAMS are refused."""

    model_config = ConfigDict(extra="allow")

    model: ModelName
    messages: list[ChatMessage]
    max_completion_tokens: Annotated[int | None, _positive_int("max_completion_tokens")] = None
    max_tokens: Annotated[int | None, _positive_int("max_tokens")] = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    n: Any = None

    @field_validator("messages", mode="before")
    @classmethod
    def _non_empty(cls, messages: Any) -> Any:
        if not isinstance(messages, list) or not messages:
            raise _sentence("'messages' must be a non-empty list.")
        return messages

    @field_validator("n")
    @classmethod
    def _one_answer(cls, n: Any) -> Any:
        if n not in (None, 1):
            raise _sentence("Only n=1 is supported.")
        return n

    @model_validator(mode="after")
    def _nothing_unsupported(self) -> "ChatCompletionRequest":
        for name in UNSUPPORTED_CHAT_PARAMS:
            if (self.model_extra or {}).get(name) not in (None, [], {}):
                raise PydanticCustomError(
                    "unsupported", "'{name}' is not supported by this API yet.", {"name": name}
                )
        return self

    @property
    def answer_limit(self) -> int | None:
        """max_completion_tokens (OpenAI's current name) or max_tokens."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def messages_for_model(self) -> list[dict[str, str]]:
        return [message.for_model() for message in self.messages]


class EmbeddingRequest(BaseModel):
    """POST /v1/embeddings: strings only (token arrays are refused), at most MAX_EMBEDDING_INPUTS."""

    model_config = ConfigDict(extra="ignore")

    model: ModelName
    input: list[str] = Field(default_factory=list)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int | None, _positive_int("dimensions")] = None

    @field_validator("input", mode="before")
    @classmethod
    def _strings(cls, raw: Any) -> Any:
        inputs = [raw] if isinstance(raw, str) else raw
        if not isinstance(inputs, list) or not inputs:
            raise _sentence("'input' must be a non-empty string or list of strings.")
        if len(inputs) > MAX_EMBEDDING_INPUTS:
            raise _sentence(f"At most {MAX_EMBEDDING_INPUTS} inputs per request.")
        if not all(isinstance(text, str) and text for text in inputs):
            raise _sentence("Every input must be a non-empty string (token arrays are not supported).")
        return inputs

    @field_validator("encoding_format", mode="before")
    @classmethod
    def _encoding(cls, value: Any) -> Any:
        if value is None:
            return "float"
        if value not in ("float", "base64"):
            raise _sentence("'encoding_format' must be 'float' or 'base64'.")
        return value


def bad_request_from(error: ValidationError) -> BadRequest:
    """The first problem of a validation error, in words a caller can act on, with the field as param."""
    first = error.errors(include_url=False)[0]
    location = [str(part) for part in first["loc"]]
    if first["type"] == "json_invalid":
        return BadRequest(
            f"The request body is not valid JSON ({first['msg'].removeprefix('Invalid JSON: ')})."
        )
    if first["type"] == "model_type" and not location:
        return BadRequest("The request body must be a JSON object.")
    if first["type"] == "unsupported":
        name = str(first.get("ctx", {}).get("name", ""))
        return BadRequest(first["msg"], name or None)
    param = location[0] if location else None
    where = (location or ["body"])[0] + "".join(
        f"[{part}]" if part.isdigit() else f".{part}" for part in location[1:]
    )
    if first["type"] == "missing":
        return BadRequest(f"'{where}' is required.", param)
    message = first["msg"]
    if first["type"] == "sentence":
        return BadRequest(message, param)
    if first["type"] == "phrase":
        return BadRequest(f"{where} {message}", param)
    return BadRequest(f"{where}: {message}", param)
