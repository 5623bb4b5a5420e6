"""Embedders behind one small protocol; sentence-transformers loaded lazily, with a content-hash cache.

The default model is multilingual-e5-small (zh + en, 384-dim, prompts 'query: ' / 'passage: '), built offline by
`drugrag setup` from ../shared/tools/build_multilingual_e5.py; any sentence-transformers id or local path works
via DRUGRAG_EMBEDDING_MODEL. dtype "auto" (the default) uses bfloat16 autocast only where the CPU has native bf16
(AVX512_BF16 or AMX: ~2.4x faster than fp32, cosine 0.99999 to the fp32 vectors on real label chunks) and fp32
elsewhere: on an AVX2-only CPU bf16 is emulated and about 4x slower than fp32.

`HashEmbedder` (DRUGRAG_EMBEDDING_MODEL=hash) is a deterministic smoke/test backend: feature-hashed keyword
vectors, no model, no semantic quality. It lets the unit suite build a real knowledge base in seconds.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rag.core.errors import ModelUnavailable
from rag.retrieval.sparse import token_index, tokenize

log = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    name: str

    @property
    def dim(self) -> int: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray: ...


class EmbeddingCache:
    """sqlite cache: sha1(model|prompt|max_len|text) → float16 vector. Makes re-ingest after a store wipe cheap."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (k TEXT PRIMARY KEY, v BLOB)")
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                part = list(keys[i: i + 500])
                q = f"SELECT k, v FROM emb WHERE k IN ({','.join('?' * len(part))})"
                for k, v in self._db.execute(q, part):
                    out[k] = np.frombuffer(v, dtype=np.float16).astype(np.float32)
        return out

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO emb (k, v) VALUES (?, ?)",
                [(k, v.astype(np.float16).tobytes()) for k, v in items.items()],
            )
            self._db.commit()

    def close(self) -> None:
        self._db.close()


def native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512_BF16 or AMX tiles), so bf16 autocast is faster than fp32."""
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # an older torch without these probes: be safe, fp32 is never emulated
        return False


def resolve_dtype(dtype: str, device: str = "cpu") -> str:
    """'auto' → 'bfloat16' on a CPU with native bf16, else 'float32'; an explicit dtype is kept."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if device == "cpu" and native_bf16() else "float32"


class HashEmbedder:
    """Deterministic feature-hashing embedder (a smoke/test backend, not for real use).

    Each keyword token of rag.retrieval.sparse.tokenize (and each character trigram of latin words) adds ±1 to one of
    `dim` dimensions chosen by a stable hash; vectors are L2-normalised. Same text → same vector in every process.
    It carries no meaning, so a service using it routes questions by exact cues only (no intent classifier).
    """

    name = "hash"

    def __init__(self, dim: int = 384) -> None:
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self._dim, dtype=np.float32)
        feats = tokenize(text)
        feats += [f"#{w[i:i + 3]}" for w in feats if w.isascii() and len(w) > 3 for i in range(len(w) - 2)]
        for f in feats:
            h = token_index(f)
            v[h % self._dim] += 1.0 if (h >> 16) & 1 else -1.0
        n = float(np.linalg.norm(v))
        return v / n if n else v

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self._dim), dtype=np.float32)

    def embed_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self.embed_queries(texts)


class SentenceTransformerEmbedder:
    def __init__(
        self,
        model: str,
        query_prompt: str = "query: ",
        passage_prompt: str = "passage: ",
        max_seq_length: int = 128,
        dtype: str = "auto",
        batch_size: int = 32,
        device: str = "cpu",
        cache_path: Path | None = None,
    ) -> None:
        self.name = model
        self.query_prompt = query_prompt
        self.passage_prompt = passage_prompt
        self.max_seq_length = max_seq_length
        self.dtype = resolve_dtype(dtype, device)
        self.batch_size = batch_size
        self.device = device
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache = EmbeddingCache(cache_path) if cache_path else None

    # lazy load: importing sentence_transformers costs ~5 s, so only when a vector is first needed
    def _load(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    if Path(self.name).is_absolute() and not Path(self.name).exists():
                        raise ModelUnavailable(
                            f"embedding model not found at {self.name}; run `drugrag setup` to build "
                            "multilingual-e5-small, or set DRUGRAG_EMBEDDING_MODEL to a sentence-transformers id/path"
                        )
                    try:
                        from sentence_transformers import SentenceTransformer

                        m = SentenceTransformer(self.name, device=self.device)
                    except Exception as e:
                        raise ModelUnavailable(f"cannot load embedding model {self.name!r}: {e}") from e
                    m.max_seq_length = self.max_seq_length
                    self._model = m
                    log.info("loaded embedding model %s (dim %d, %s)", self.name, m.get_embedding_dimension(),
                             self.dtype)
        return self._model

    @property
    def dim(self) -> int:
        return int(self._load().get_embedding_dimension())

    def _encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        import torch

        m = self._load()
        use_bf16 = self.dtype == "bfloat16" and self.device == "cpu"
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            v = m.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                show_progress_bar=progress, convert_to_numpy=True,
            )
        return np.asarray(v, dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self.query_prompt + t for t in texts])

    def embed_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        full = [self.passage_prompt + t for t in texts]
        if self._cache is None:
            return self._encode(full, progress)
        tag = f"{self.name}|{self.max_seq_length}|"
        keys = [hashlib.sha1((tag + t).encode()).hexdigest() for t in full]
        found = self._cache.get_many(list(dict.fromkeys(keys)))
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            idx = {k: i for i, k in enumerate(keys)}
            vecs = self._encode([full[idx[k]] for k in missing], progress)
            new = dict(zip(missing, vecs, strict=True))
            self._cache.put_many(new)
            found.update(new)
        log.info("embedded %d passages (%d from cache)", len(keys), len(keys) - len(missing))
        return np.stack([found[k] for k in keys]) if keys else np.zeros((0, self.dim), dtype=np.float32)
