"""The ingest report (what was loaded, added, skipped; seconds per stage; memory and disk) and its measuring helpers."""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class IngestReport:
    labels: int = 0
    chunks: int = 0
    nodes: int = 0
    edges: int = 0
    added: dict[str, int] = field(default_factory=lambda: {"labels": 0, "chunks": 0, "nodes": 0, "edges": 0})
    unchanged_labels: int = 0
    replaced_labels: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)
    store_bytes: dict[str, int | None] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    embed_chunks_per_s: float | None = None
    embedding: dict[str, Any] = field(default_factory=dict)  # backend, dedup counts, this machine's calibration
    finished_at: str = ""
    labels_by_language: dict[str, int] = field(default_factory=dict)
    sections_by_key: dict[str, int] = field(default_factory=dict)
    graph_counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def stage(report: IngestReport, name: str) -> Iterator[None]:
    t = time.perf_counter()
    try:
        yield
    finally:
        report.seconds[name] = round(report.seconds.get(name, 0.0) + time.perf_counter() - t, 3)


def peak_rss_mb() -> float:
    """Peak resident memory of this process: VmHWM (per process image; ru_maxrss survives exec on Linux, so a
    child started by a big parent would report the parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def dir_bytes(p: Path) -> int | None:
    if not p.exists():
        return None
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
