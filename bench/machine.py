"""The CPU line printed with every benchmark figure: what the figures were measured on."""

from __future__ import annotations

import os

from rag.retrieval.calibration import CAP_ENV, _cpu_info, torch_capability


def cpu_line() -> dict[str, object]:
    """CPU model, cores, ISA flags, torch's dispatch capability and any capping environment variables.

    torch honours ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA (and MKL MKL_ENABLE_INSTRUCTIONS); ONNX Runtime does
    not: it picks its kernels from CPUID, so `onnxruntime_isa` says what its figures really used."""
    cpu, flags = _cpu_info()
    ort = "avx512-vnni" if "avx512_vnni" in flags else "avx-vnni" if "avx_vnni" in flags else \
        "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "other"
    return {"cpu": cpu, "cores": os.cpu_count(), "isa_flags": flags, "torch_capability": torch_capability(),
            "onnxruntime_isa": ort, "env": {k: os.environ[k] for k in CAP_ENV if k in os.environ}}
