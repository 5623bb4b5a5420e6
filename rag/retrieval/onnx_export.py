"""Offline ONNX export (torch.onnx, dynamo exporter) and dynamic int8 quantisation of a local embedding model.

`ensure_onnx(model_dir, home)` exports the model's Transformer (inputs input_ids, attention_mask; output
last_hidden_state, batch and sequence dynamic) once into `home/models/onnx/<name>-<fingerprint>/`, checks the
exported graph against torch on a probe batch (padding included), and for int8 quantises every MatMul/Gather weight
per output channel with 7-bit range (`reduce_range`): on AVX2 CPUs without VNNI, ONNX Runtime multiplies u8×s8 with
`vpmaddubsw`, whose 16-bit sums can saturate with full 8-bit weights; 7-bit weights cannot. No network is used: the
model must be a local directory (a hub id has no ONNX path here). Pooling/normalisation stay outside the graph.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path

from rag.core.errors import ModelUnavailable

log = logging.getLogger(__name__)
_lock = threading.Lock()
FP32_NAME = "model.onnx"
INT8_NAME = "model-int8.onnx"
EXPORT_VERSION = "1"  # bump when the export or quantisation recipe changes


def model_fingerprint(model_dir: Path) -> str:
    """Hash of the model's config and its weight files' names, sizes and mtimes (cheap; no weight reads)."""
    h = hashlib.sha1(EXPORT_VERSION.encode())
    for p in sorted(model_dir.iterdir()):
        if p.is_file() and p.suffix in (".json", ".safetensors", ".bin"):
            st = p.stat()
            h.update(f"{p.name}|{st.st_size}|{int(st.st_mtime)}".encode())
    return h.hexdigest()[:12]


def onnx_dir(model_dir: Path, home: Path) -> Path:
    return home / "models" / "onnx" / f"{model_dir.name}-{model_fingerprint(model_dir)}"


def _export(model_dir: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32).eval()

    class Encoder(torch.nn.Module):  # keyword arguments only: positional order differs between versions
        def __init__(self, m: torch.nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    enc = Encoder(model).eval()
    max_pos = int(getattr(model.config, "max_position_embeddings", 512))
    ids = torch.full((2, 16), 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=max_pos)
    t = time.perf_counter()
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(
            enc, (ids, mask), str(out), input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"], dynamic_shapes={"input_ids": {0: batch, 1: seq},
                                                                 "attention_mask": {0: batch, 1: seq}},
            dynamo=True, external_data=True, verbose=False,
        )
    log.info("exported %s to ONNX in %.1f s", model_dir, time.perf_counter() - t)
    _check(enc, out)


def _check(enc: object, path: Path, tol: float = 1e-3) -> None:
    """The exported graph gives torch's hidden states on a padded probe batch and on a single short text."""
    import numpy as np
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for b, n in ((1, 3), (3, 21)):
        ids = rng.integers(5, 1000, (b, n)).astype(np.int64)
        mask = np.ones_like(ids)
        if b > 1:
            mask[0, n // 2:] = 0
        with torch.no_grad():
            ref = enc(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()  # type: ignore[operator]
        got = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        err = float(np.abs((got - ref) * mask[..., None]).max())
        if err > tol:
            raise ModelUnavailable(f"ONNX export of {path} differs from torch by {err:.2e} (> {tol}); not used")


def _quantize(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    t = time.perf_counter()
    logging.disable(logging.INFO)  # the quantiser logs every tensor at INFO on the root logger
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                         extra_options={"DefaultTensorType": 1})  # 1 = FLOAT, for outputs inference can't type
    finally:
        logging.disable(logging.NOTSET)
    log.info("quantised %s to int8 in %.1f s (%.0f MB)", src, time.perf_counter() - t, dst.stat().st_size / 2**20)


def ensure_onnx(model_dir: Path, home: Path, quantized: bool = True) -> Path:
    """Path of the fp32 or int8 ONNX file of `model_dir`, exporting/quantising it the first time."""
    if not (model_dir / "config.json").is_file():
        raise ModelUnavailable(f"ONNX export needs a local model directory; {model_dir} is not one")
    d = onnx_dir(model_dir, home)
    fp32, int8 = d / FP32_NAME, d / INT8_NAME
    with _lock:
        if not fp32.exists():
            tmp = d.with_name(d.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            try:
                _export(model_dir, tmp / FP32_NAME)
                (tmp / "export.json").write_text(json.dumps({"model": str(model_dir), "version": EXPORT_VERSION}))
                if d.exists() and not fp32.exists():
                    shutil.rmtree(d, ignore_errors=True)
                try:
                    tmp.rename(d)  # atomic: a half-written export is never used
                except OSError:  # another process (the cache is per machine) finished first
                    if not fp32.exists():
                        raise
            except ModelUnavailable:
                raise
            except Exception as e:  # any exporter failure means: no ONNX path on this machine
                raise ModelUnavailable(f"cannot export {model_dir} to ONNX: {e}") from e
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        if quantized and not int8.exists():
            part = d / f"{INT8_NAME}.part{os.getpid()}"
            try:
                _quantize(fp32, part)
            except Exception as e:  # as above, for the quantiser
                part.unlink(missing_ok=True)
                raise ModelUnavailable(f"cannot quantise {fp32}: {e}") from e
            os.replace(part, int8)
    return int8 if quantized else fp32
