"""Model runners: text batches in, L2-normalised sentence vectors out. One per embedding backend.

    torch-fp32 · torch-bf16   sentence-transformers on torch (bf16 = autocast; fast only with native bf16)
    onnx-fp32 · onnx-int8     ONNX Runtime on the model exported once by rag.retrieval.onnx_export (int8: dynamic
                              quantisation, per-channel, 7-bit weights so AVX2 kernels cannot saturate)

Both run the same tokenisation (rag.retrieval.tokens.FastTokenizer when the model directory has a tokenizer.json)
and the same length-sorted batching, so their vectors differ only by the arithmetic of the backend. The ONNX path
imports neither torch nor sentence-transformers (a query-serving process starts in well under a second).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.core.errors import ModelUnavailable
from rag.retrieval.tokens import FastTokenizer

log = logging.getLogger(__name__)

BACKENDS = ("torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8")


class Runner(Protocol):
    kind: str  # one of BACKENDS

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str], progress: bool = False, max_length: int | None = None) -> np.ndarray:
        """Normalised vectors; `max_length` (≤ the runner's window) cuts every text to fewer tokens."""
        ...


def read_pooling(model_dir: Path) -> tuple[str, bool] | None:
    """(pooling mode 'mean'|'cls', normalise?) of a plain Transformer→Pooling[→Normalize] sentence-transformers dir;
    None for any other pipeline (e.g. an extra Dense layer), which only the generic torch path runs."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text())
    except (OSError, ValueError):
        return None
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]):
        return None
    try:
        pool = json.loads((model_dir / modules[1]["path"] / "config.json").read_text())
    except (OSError, ValueError, KeyError):
        return None
    if pool.get("pooling_mode_mean_tokens") or pool.get("pooling_mode") == "mean":
        mode = "mean"
    elif pool.get("pooling_mode_cls_token") or pool.get("pooling_mode") == "cls":
        mode = "cls"
    else:
        return None
    return mode, kinds[2:] == ["Normalize"]


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str, normalize: bool) -> np.ndarray:
    if mode == "cls":
        v = hidden[:, 0, :]
    else:
        m = mask[..., None].astype(hidden.dtype)
        v = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    v = v.astype(np.float32)
    if normalize:
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return v


def run_batched(tok: FastTokenizer, texts: Sequence[str], batch_size: int, dim: int,
                fn: Callable[[np.ndarray, np.ndarray], np.ndarray], progress: bool = False,
                max_length: int | None = None) -> np.ndarray:
    """Tokenise once, sort by token length (little padding), run `fn(ids, mask)` per batch, restore the order."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if not texts:
        return out
    ids = tok.encode_ids(texts, max_length)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    from tqdm import tqdm

    bar = tqdm(total=len(texts), desc="embed", unit="chunk", disable=not progress, leave=False)
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        arr, mask = tok.pad([ids[j] for j in idx])
        out[idx] = fn(arr, mask)
        bar.update(len(idx))
    bar.close()
    return out


_ST_WINDOW_LOCK = threading.Lock()


class TorchRunner:
    """sentence-transformers on torch; bf16 = CPU autocast. Tokenises with FastTokenizer where it can."""

    def __init__(self, model: str, max_length: int, dtype: str = "float32", batch_size: int = 32,
                 device: str = "cpu", shared: Any = None) -> None:
        self.kind = "torch-bf16" if dtype == "bfloat16" else "torch-fp32"
        self.dtype, self.device, self.batch_size, self.max_length = dtype, device, batch_size, max_length
        if Path(model).is_absolute() and not Path(model).exists():
            raise ModelUnavailable(
                f"embedding model not found at {model}; run `drugrag setup` to build multilingual-e5-small, "
                "or set DRUGRAG_EMBEDDING_MODEL to a sentence-transformers id/path"
            )
        self.model: Any = shared  # a loaded SentenceTransformer (fp32 and bf16 share the weights)
        if shared is None:
            try:
                from sentence_transformers import SentenceTransformer

                self.model = SentenceTransformer(model, device=device)
            except Exception as e:
                raise ModelUnavailable(f"cannot load embedding model {model!r}: {e}") from e
        self.model.max_seq_length = max_length
        self._dim = int(self.model.get_embedding_dimension())
        local = Path(model)
        self.tok = FastTokenizer.for_model(local, max_length) if read_pooling(local) else None
        log.info("loaded embedding model %s on torch (%s, dim %d, fast tokenizer %s)", model, dtype, self._dim,
                 self.tok is not None)

    @property
    def dim(self) -> int:
        return self._dim

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        feats = {"input_ids": torch.from_numpy(ids).to(self.device),
                 "attention_mask": torch.from_numpy(mask).to(self.device)}
        out = self.model(feats)["sentence_embedding"]
        return np.asarray(out.float().cpu().numpy(), dtype=np.float32)

    def encode(self, texts: Sequence[str], progress: bool = False, max_length: int | None = None) -> np.ndarray:
        import torch

        bf16 = self.dtype == "bfloat16" and self.device == "cpu"
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if self.tok is not None:
                return run_batched(self.tok, texts, self.batch_size, self._dim, self._forward, progress, max_length)
            # sentence-transformers reads the window from the (possibly shared) model object, so set-encode-restore
            # runs under one lock: a question encoded while a passage batch runs must not see the other's window.
            with _ST_WINDOW_LOCK:
                self.model.max_seq_length = min(max_length or self.max_length, self.max_length)
                try:
                    v = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                          show_progress_bar=progress, convert_to_numpy=True)
                finally:
                    self.model.max_seq_length = self.max_length
        return np.asarray(v, dtype=np.float32)


class OnnxRunner:
    """ONNX Runtime (CPU) on an exported model file; pooling and normalisation in numpy.

    Small calls (a question and its tails: a few short texts) and passage batches are run on different sessions of
    the same file. Passage batches use a session with `threads` intra-op threads (default: every core). For small
    calls, which is faster depends on the machine, so it is measured on the first small call (`pick_small`, ~10
    runs of a two-text probe, well under a second) and kept:
    - On a 2-core Xeon (AVX-512) a second thread only added a barrier wait: one-thread p50 4.3 vs 8.6 ms, p95 5.6
      vs 14.3 ms.
    - On a 2-core AMD EPYC (AVX2) the opposite held: a two-text question took 53 ms on one thread and 29-31 ms on
      two.
    The session not chosen is closed (unless passage batches already use it), so a serving process holds one copy
    of the weights."""

    SMALL = 4  # calls with at most this many texts are "small"
    PICK_MARGIN = 0.85  # the all-core session serves small calls only if its median is below this share of one thread

    def __init__(self, onnx_path: Path, model_dir: Path, max_length: int, quantized: bool, batch_size: int = 32,
                 threads: int | None = None) -> None:
        self.kind = "onnx-int8" if quantized else "onnx-fp32"
        spec = read_pooling(model_dir)
        tok = FastTokenizer.for_model(model_dir, max_length)
        if spec is None or tok is None:
            raise ModelUnavailable(f"{model_dir} is not a plain Transformer+Pooling model: no ONNX path for it")
        self.mode, self.normalize = spec
        self.tok, self.batch_size, self.path, self.threads = tok, batch_size, onnx_path, threads
        self._small: Any = self._session(1)
        self._bulk: Any = None
        self._inputs = {i.name for i in self._small.get_inputs()}
        self._dim = int(self._small.get_outputs()[0].shape[-1])
        self._lock = threading.Lock()  # one run at a time: intra-op threads already use every core
        self._pick_lock = threading.Lock()
        self.small_choice: dict[str, Any] | None = None  # what pick_small measured: threads, median ms of each
        log.info("loaded embedding model %s on onnxruntime (%s, dim %d)", onnx_path, self.kind, self._dim)

    def _session(self, threads: int | None) -> Any:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or 0
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])

    @property
    def dim(self) -> int:
        return self._dim

    def _run(self, session: Any, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        with self._lock:
            hidden = session.run(None, feed)[0]
        return pool(hidden, mask, self.mode, self.normalize)

    def _bulk_session(self) -> Any:
        with self._pick_lock:
            if self._bulk is None:
                self._bulk = self._session(self.threads)
            return self._bulk

    def pick_small(self, runs: int = 5) -> dict[str, Any]:
        """Measure a two-text question on the one-thread and the all-core session (alternating, after one warm run
        each), keep the faster for small calls and close the other; the choice is made once per runner."""
        import os
        import statistics
        import time

        with self._pick_lock:
            if self.small_choice is not None:
                return self.small_choice
            cores = self.threads or os.cpu_count() or 1
            if cores <= 1:
                self.small_choice = {"threads": 1, "measured": False}
                return self.small_choice
            one = self._small
            had_bulk = self._bulk is not None  # passage batches already ran (an ingest): keep their session
            many = self._bulk if had_bulk else self._session(self.threads)
            arr, mask = self.tok.pad(self.tok.encode_ids(
                ["query: how often should I take this medicine, and can I take it with food?",
                 "query: can I take it with food?"]))
            ms: dict[int, list[float]] = {1: [], cores: []}
            for sess in (one, many):
                self._run(sess, arr, mask)
            for _ in range(runs):
                for n, sess in ((1, one), (cores, many)):
                    t = time.perf_counter()
                    self._run(sess, arr, mask)
                    ms[n].append((time.perf_counter() - t) * 1000)
            med = {n: statistics.median(v) for n, v in ms.items()}
            use_many = med[cores] < self.PICK_MARGIN * med[1]
            self._small = many if use_many else one
            self._bulk = many if use_many or had_bulk else None  # else dropped (re-opened for a batch)
            self.small_choice = {"threads": cores if use_many else 1, "measured": True,
                                 "median_ms": {str(n): round(v, 2) for n, v in med.items()}}
            log.info("small embedding calls: %d thread(s) (median ms, 1 thread %.1f, %d threads %.1f)",
                     self.small_choice["threads"], med[1], cores, med[cores])
            return self.small_choice

    def encode(self, texts: Sequence[str], progress: bool = False, max_length: int | None = None) -> np.ndarray:
        if len(texts) <= self.SMALL:
            if self.small_choice is None:
                self.pick_small()
            session = self._small
        else:
            session = self._bulk_session()
        return run_batched(self.tok, texts, self.batch_size, self._dim, lambda i, m: self._run(session, i, m),
                           progress, max_length)


def make_runner(kind: str, model: str, max_length: int, home: Path, batch_size: int = 32, device: str = "cpu",
                threads: int | None = None) -> Runner:
    """A runner of `kind` (one of BACKENDS); ONNX kinds export the model into `home` the first time."""
    if kind.startswith("torch-"):
        return TorchRunner(model, max_length, "bfloat16" if kind == "torch-bf16" else "float32", batch_size, device)
    if kind.startswith("onnx-"):
        from rag.retrieval.onnx_export import ensure_onnx

        quantized = kind == "onnx-int8"
        path = ensure_onnx(Path(model), home, quantized=quantized)
        return OnnxRunner(path, Path(model), max_length, quantized, batch_size, threads)
    raise ValueError(f"unknown embedding backend {kind!r} (one of {', '.join(BACKENDS)})")
