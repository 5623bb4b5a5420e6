"""Embedders behind one small protocol; the model loaded lazily, passages deduplicated and cached by content hash.

The default model is multilingual-e5-small (zh + en, 384-dim, prompts 'query: ' / 'passage: '), built offline by
`drugrag setup` from ../shared/tools/build_multilingual_e5.py; any sentence-transformers id or local path works
via DRUGRAG_EMBEDDING_MODEL. It runs on one of four backends (rag.retrieval.runners): torch fp32 / bf16 autocast,
ONNX Runtime fp32 / int8. `embedding_backend=auto` (the default) takes the fastest one whose vectors match torch
fp32 (mean cosine >= 0.99), measured once per machine (rag.retrieval.calibration); `torch` (with
`embedding_dtype`) or `onnx` (with `embedding_quantize`) pin one. dtype "auto" uses bf16 only where the CPU
claims native bf16 (AVX512_BF16 or AMX); on an AVX2-only CPU bf16 is emulated and about 4x slower than fp32.

`HashEmbedder` (DRUGRAG_EMBEDDING_MODEL=hash) is a deterministic smoke/test backend: feature-hashed keyword
vectors, no model, no semantic quality. It lets the unit suite build a real knowledge base in seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rag.core.errors import ModelUnavailable
from rag.retrieval.runners import Runner, make_runner
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
    """sqlite cache: sha1(model|weights fingerprint|max_len|backend|text) → float16 vector.

    By default one file per machine (`<machine_cache>/cache/embeddings.sqlite`, see `Settings.embedding_cache_path`),
    shared by every knowledge base built here: a second KB over the same labels (the test sessions build several, a
    user rebuilds after a store wipe) re-embeds nothing. Opened on first use with a busy timeout, so an ingest in
    another process can write beside it (sqlite's default rollback journal, not WAL: WAL's shared-memory index does
    not work on a network file system, where ~/.cache may live); a cache that cannot be opened or written (read-only
    disk) is logged once and skipped, never an ingest error."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._broken = False
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection | None:
        if self._db is None and not self._broken:
            db: sqlite3.Connection | None = None
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=60)
                db.execute("CREATE TABLE IF NOT EXISTS emb (k TEXT PRIMARY KEY, v BLOB)")
                db.commit()
                self._db = db
            except (OSError, sqlite3.Error) as e:
                if db is not None:
                    db.close()
                self._broken = True
                log.warning("embedding cache %s unusable (%s): embedding without it", self.path, e)
        return self._db

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        with self._lock:
            db = self._conn()
            if db is None:
                return out
            try:
                for i in range(0, len(keys), 500):
                    part = list(keys[i: i + 500])
                    q = f"SELECT k, v FROM emb WHERE k IN ({','.join('?' * len(part))})"
                    for k, v in db.execute(q, part):
                        out[k] = np.frombuffer(v, dtype=np.float16).astype(np.float32)
            except sqlite3.Error as e:
                log.warning("embedding cache %s unreadable (%s): embedding without it", self.path, e)
                return {}
        return out

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        with self._lock:
            db = self._conn()
            if db is None:
                return
            try:
                db.executemany(
                    "INSERT OR REPLACE INTO emb (k, v) VALUES (?, ?)",
                    [(k, v.astype(np.float16).tobytes()) for k, v in items.items()],
                )
                db.commit()
            except sqlite3.Error as e:
                with contextlib.suppress(sqlite3.Error):
                    db.rollback()
                log.warning("embedding cache %s not written (%s)", self.path, e)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512_BF16 or AMX tiles) AND torch/oneDNN may use it here.

    The CPUID probes alone say yes even when ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA cap torch to AVX2, where
    bf16 autocast is emulated (~3x slower than fp32, measured): so torch's dispatch capability must be AVX512 and a
    oneDNN cap, if set, must allow bf16. `embedding_backend=auto` measures anyway; this only decides what to try."""
    import os

    import torch

    try:
        cpuid = bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # an older torch without these probes: be safe, fp32 is never emulated
        return False
    if not cpuid or torch.backends.cpu.get_cpu_capability() != "AVX512":
        return False
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    return not cap or cap == "ALL" or any(k in cap for k in ("BF16", "AMX", "AVX10"))


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
    """A sentence-transformers model on the backend chosen by settings (see the module docstring)."""

    def __init__(
        self,
        model: str,
        query_prompt: str = "query: ",
        passage_prompt: str = "passage: ",
        max_seq_length: int = 96,
        dtype: str = "auto",
        passage_max_tokens: int | None = None,
        batch_size: int = 32,
        device: str = "cpu",
        cache_path: Path | None = None,
        backend: str = "auto",
        quantize: str = "int8",
        home: Path | None = None,
        threads: int | None = None,
    ) -> None:
        self.name = model
        self.query_prompt = query_prompt
        self.passage_prompt = passage_prompt
        self.max_seq_length = max_seq_length
        # passages may get a shorter window than questions (Settings.embedding_passage_max_tokens)
        self.passage_max_tokens = min(passage_max_tokens or max_seq_length, max_seq_length)
        self.dtype = dtype  # resolved (imports torch) only when the torch backend is pinned
        self.batch_size = batch_size
        self.device = device
        self.backend_setting = backend if device == "cpu" else "torch"
        self.quantize = quantize
        self.home = home or (cache_path.parent.parent if cache_path else Path(".drugrag"))
        self.threads = threads
        self.calibration: dict[str, Any] | None = None  # what `auto` measured (or found cached) on this machine
        self.last_stats: dict[str, int] = {}  # texts / distinct / embedded by the model, of the last embed_passages
        self._runner: Runner | None = None
        self._lock = threading.Lock()
        self._cache = EmbeddingCache(cache_path) if cache_path else None
        self._model_fp: str | None = None

    def _pinned_kind(self) -> str | None:
        if self.backend_setting == "torch":
            return "torch-bf16" if resolve_dtype(self.dtype, self.device) == "bfloat16" else "torch-fp32"
        if self.backend_setting == "onnx":
            return "onnx-int8" if self.quantize == "int8" else "onnx-fp32"
        return None

    # lazy load: importing sentence_transformers costs ~5 s, so only when a vector is first needed
    def _load(self) -> Runner:
        if self._runner is None:
            with self._lock:
                if self._runner is None:
                    self._runner = self._make_runner()
        return self._runner

    def _make_runner(self) -> Runner:
        from rag.retrieval import calibration as cal

        kind = self._pinned_kind()
        if kind is not None:
            return make_runner(kind, self.name, self.max_seq_length, self.home, self.batch_size, self.device,
                               self.threads)
        info = cal.machine_info(self.name, self.max_seq_length, self.threads)
        rec = cal.cached_choice(self.home, info)
        if rec is not None:
            try:
                runner = make_runner(rec["choice"], self.name, self.max_seq_length, self.home, self.batch_size,
                                     self.device, self.threads)
                self.calibration = {**rec, "cached": True}
                return runner
            except ModelUnavailable as e:  # e.g. the ONNX files were deleted and cannot be rebuilt
                log.warning("cached embedding backend %s unusable (%s): measuring again", rec["choice"], e)
        log.info("measuring the embedding backends on this machine (once; cached in %s)", self.home / "cache")
        choice, record, runner = cal.calibrate(self.name, self.max_seq_length, self.home, self.batch_size,
                                               self.device, self.threads)
        cal.store_choice(self.home, info, record)
        self.calibration = {**record, "cached": False}
        return runner

    def _fingerprint(self) -> str:
        """The model's weights (names, sizes, mtimes) for the cache key: a model rebuilt in place is never served
        the old model's vectors from the machine-wide cache."""
        if self._model_fp is None:
            from rag.retrieval.onnx_export import model_fingerprint

            d = Path(self.name)
            self._model_fp = model_fingerprint(d) if d.is_dir() else ""
        return self._model_fp

    @property
    def backend(self) -> str:
        """The backend in use (loads the model): torch-fp32, torch-bf16, onnx-fp32 or onnx-int8."""
        return self._load().kind

    @property
    def dim(self) -> int:
        return int(self._load().dim)

    def _encode(self, texts: Sequence[str], progress: bool = False, max_length: int | None = None) -> np.ndarray:
        return self._load().encode(texts, progress, max_length)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self.query_prompt + t for t in texts])

    def embed_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Each distinct text is embedded once (content-hash dedup before the model), then looked up in the cache."""
        full = [self.passage_prompt + t for t in texts]
        if not full:
            return np.zeros((0, self.dim), dtype=np.float32)
        window = self.passage_max_tokens
        tag = f"{self.name}|{self._fingerprint()}|{window}|{self.backend}|"
        keys = [hashlib.sha1((tag + t).encode()).hexdigest() for t in full]
        first = dict.fromkeys(keys)  # distinct keys, in order
        text_of = dict(zip(keys, full, strict=True))
        found = self._cache.get_many(list(first)) if self._cache is not None else {}
        missing = [k for k in first if k not in found]
        if missing:
            vecs = self._encode([text_of[k] for k in missing], progress, window)
            new = dict(zip(missing, vecs, strict=True))
            if self._cache is not None:
                self._cache.put_many(new)
            found.update(new)
        self.last_stats = {"texts": len(keys), "distinct": len(first), "embedded": len(missing)}
        log.info("embedded %d passages: %d distinct, %d from cache, %d by the model", len(keys), len(first),
                 len(first) - len(missing), len(missing))
        return np.stack([found[k] for k in keys])
