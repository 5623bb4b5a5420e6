"""Choose the fastest correct embedding backend for this machine by measuring it, once per machine.

Which backend is fastest is not knowable from flags alone: `torch.cpu._is_avx512_bf16_supported()` reads CPUID and
says yes even when torch/oneDNN are capped to AVX2 (ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA), where bf16 is
emulated and ~4x slower than fp32; ONNX Runtime picks its own kernels from CPUID. So every candidate that can run
here is timed on the same texts, interleaved round by round (robust to a busy machine), and checked against the
torch fp32 vectors: a candidate whose mean cosine to fp32 is under MIN_MEAN_COSINE (or any one under MIN_COSINE)
is rejected whatever its speed. The fastest accepted candidate wins.

The result is cached per machine key (CPU model and ISA flags, torch's CPU capability, the capping environment
variables, thread count, library versions, model and window) in `<machine cache>/cache/embedding_backend.json`;
the machine cache (`DRUGRAG_MACHINE_CACHE`, default `~/.cache/drugrag`) is shared by every DRUGRAG_HOME, so a new
knowledge base (each test session builds several) does not measure again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rag.core.errors import ModelUnavailable
from rag.retrieval.runners import Runner, TorchRunner, make_runner, read_pooling

log = logging.getLogger(__name__)

MIN_MEAN_COSINE = 0.99
MIN_COSINE = 0.97
CACHE_FILE = "embedding_backend.json"
CAP_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "OMP_NUM_THREADS")
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")

# Calibration passages (written for this purpose, label-like in length and vocabulary, en + zh): long enough to
# fill a 96-token window, so throughput is that of real chunks.
_EN = [
    "Adults: take one tablet by mouth once daily with or without food. The dose may be increased after two weeks "
    "if the response is inadequate, up to a maximum of four tablets per day. Patients with moderate renal "
    "impairment should start at the lowest dose and be monitored for dizziness, low blood pressure and changes "
    "in serum potassium. Do not crush or chew extended-release tablets; swallow them whole with water.",
    "Contraindicated in patients with known hypersensitivity to any component of the product, in patients "
    "receiving strong CYP3A4 inhibitors such as ketoconazole or clarithromycin, and during the third trimester "
    "of pregnancy. Discontinue at once if angioedema, severe skin reactions or signs of liver injury appear, "
    "and do not restart. Use with caution in the elderly and in patients with a history of seizures.",
    "The most common adverse reactions (incidence of at least five percent and twice the placebo rate) were "
    "nausea, headache, diarrhea, fatigue, upper respiratory tract infection and dizziness. Serious reactions "
    "reported after marketing include pancreatitis, hepatitis, thrombocytopenia, QT prolongation and "
    "hypoglycemia in patients also treated with insulin or a sulfonylurea. Report suspected reactions promptly.",
    "Concomitant use with warfarin may increase the international normalized ratio and the risk of bleeding; "
    "monitor INR closely when starting, changing or stopping therapy. Nonsteroidal anti-inflammatory drugs, "
    "aspirin and selective serotonin reuptake inhibitors add to the bleeding risk. Rifampin and other strong "
    "inducers lower plasma concentrations and may reduce efficacy; avoid the combination where possible.",
]
_ZH = [
    "用法用量：口服。成人一次2片，一日3次，饭后服用；儿童用量请咨询医师或药师。肝肾功能不全者、老年患者应在医师"
    "指导下减量使用。服药期间忌烟、酒及辛辣、生冷、油腻食物。如服药三天症状无缓解，应去医院就诊。",
    "禁忌：对本品及其成分过敏者禁用；孕妇、哺乳期妇女禁用；严重心、肝、肾功能不全者禁用。注意事项：本品为处方药，"
    "必须在医师指导下使用。不良反应：偶见皮疹、恶心、头晕、胃部不适，停药后可自行消失。",
]
CALIBRATION_TEXTS = [f"passage: drug {i} | {t}" for i in range(3) for t in _EN + _ZH]


def _cpu_info() -> tuple[str, list[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), []
    model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "")
    flags_line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    flags = set(flags_line.split(":", 1)[1].split()) if flags_line else set()
    return model or platform.machine(), [f for f in ISA_FLAGS if f in flags]


def torch_capability() -> str:
    """What torch actually dispatches to on this CPU (honours ATEN_CPU_CAPABILITY): AVX2, AVX512, ..."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability())


def machine_info(model: str, max_length: int, threads: int | None) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    def ver(pkg: str) -> str:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return "-"

    cpu, flags = _cpu_info()  # no torch import here: a cached ONNX choice serves without torch
    return {
        "cpu": cpu, "isa_flags": flags, "cores": os.cpu_count(),
        "threads": threads, "env": {k: os.environ[k] for k in CAP_ENV if k in os.environ},
        "torch": ver("torch"), "onnxruntime": ver("onnxruntime"), "model": str(model), "max_length": max_length,
    }


def machine_key(info: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(info, sort_keys=True).encode()).hexdigest()[:16]


def candidate_kinds(model: str) -> list[str]:
    """Backends worth timing here: fp32 always; bf16 only where the CPU claims native bf16 (timed anyway, as the
    claim can be wrong for what torch uses); ONNX where onnxruntime is installed and the model is a local plain
    Transformer+Pooling directory."""
    from rag.retrieval.embedding import native_bf16

    kinds = ["torch-fp32"]
    if native_bf16():
        kinds.append("torch-bf16")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return kinds
    if read_pooling(Path(model)) is not None:
        kinds += ["onnx-fp32", "onnx-int8"]
    return kinds


def measure(runners: dict[str, Runner], texts: list[str], rounds: int = 3,
            clock: Callable[[], float] = time.perf_counter) -> dict[str, dict[str, Any]]:
    """Chunks/s (best of `rounds`, interleaved) and cosine to torch-fp32 (the first runner) for each runner.

    Round 0 also gives the vectors for the quality check; a rejected runner or one 3x slower than the best so far
    is not timed again."""
    assert next(iter(runners)) == "torch-fp32", "the fp32 reference runs first"
    for r in runners.values():  # warm-up (first-call allocations, thread pools) on a small batch
        r.encode(texts[:4])
    res: dict[str, dict[str, Any]] = {k: {"chunks_per_s": 0.0} for k in runners}
    alive = list(runners)
    ref: np.ndarray | None = None
    for rnd in range(rounds):
        for kind in alive:
            t = clock()
            v = runners[kind].encode(texts)
            res[kind]["chunks_per_s"] = round(max(res[kind]["chunks_per_s"], len(texts) / (clock() - t)), 1)
            if rnd == 0:
                ref = v if ref is None else ref
                cos = np.sum(v * ref, axis=1)
                res[kind].update(cos_mean=round(float(cos.mean()), 5), cos_min=round(float(cos.min()), 5),
                                 ok=bool(cos.mean() >= MIN_MEAN_COSINE and cos.min() >= MIN_COSINE))
        best = max(res[k]["chunks_per_s"] for k in alive if res[k]["ok"])
        alive = [k for k in alive if res[k]["ok"] and res[k]["chunks_per_s"] * 3 >= best]
    return res


def calibrate(model: str, max_length: int, home: Path, batch_size: int = 32, device: str = "cpu",
              threads: int | None = None) -> tuple[str, dict[str, Any], Runner]:
    """Time every candidate; returns (chosen kind, the record cached for this machine, the chosen runner)."""
    t0 = time.perf_counter()
    base = TorchRunner(model, max_length, "float32", batch_size, device)
    runners: dict[str, Runner] = {"torch-fp32": base}
    skipped: dict[str, str] = {}
    for kind in candidate_kinds(model)[1:]:
        try:
            if kind == "torch-bf16":
                runners[kind] = TorchRunner(model, max_length, "bfloat16", batch_size, device, shared=base.model)
            else:
                runners[kind] = make_runner(kind, model, max_length, home, batch_size, device, threads)
        except ModelUnavailable as e:
            skipped[kind] = str(e)
            log.warning("embedding backend %s unavailable here: %s", kind, e)
    res = measure(runners, CALIBRATION_TEXTS, rounds=2)
    ok = {k: v for k, v in res.items() if v["ok"] and v["chunks_per_s"] > 0}
    choice = max(ok, key=lambda k: ok[k]["chunks_per_s"]) if ok else "torch-fp32"
    record = {"choice": choice, "torch_capability": torch_capability(), "measured": res, "unavailable": skipped,
              "seconds": round(time.perf_counter() - t0, 1), "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    log.info("embedding backend for this machine: %s (%s)", choice,
             ", ".join(f"{k} {v['chunks_per_s']}/s cos {v['cos_mean']}" for k, v in res.items()))
    return choice, record, runners[choice]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def cached_choice(home: Path, info: dict[str, Any]) -> dict[str, Any] | None:
    rec = _read(home / "cache" / CACHE_FILE).get(machine_key(info))
    return rec if isinstance(rec, dict) and rec.get("choice") else None


def store_choice(home: Path, info: dict[str, Any], record: dict[str, Any]) -> None:
    path = home / "cache" / CACHE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _read(path)
    data[machine_key(info)] = {**record, "machine": info}
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    tmp.replace(path)
