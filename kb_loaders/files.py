"""Helpers shared by the loaders: finding input files, fingerprints, whitespace, label de-duplication."""

from __future__ import annotations

import gc
import hashlib
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from kb_loaders.model import Label, LoadResult, SkippedRecord

log = logging.getLogger(__name__)

_WS = re.compile(r"\s+")


def collapse_ws(text: str) -> str:
    """All runs of whitespace (including newlines and no-break spaces) → one space; stripped."""
    return _WS.sub(" ", text).strip()


def iter_files(path: Path, suffixes: Sequence[str], prefix: str = "") -> list[Path]:
    """A file → [file] (whatever its name); a directory → the files under it (recursively, hidden ones left out)
    whose lower-cased name ends with one of `suffixes` and starts with `prefix`, sorted by relative path."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    sfx = tuple(s.lower() for s in suffixes)
    out: list[Path] = []
    for p in path.rglob("*"):
        rel = p.relative_to(path)
        if any(part.startswith(".") for part in rel.parts):
            continue
        name = p.name.lower()
        if p.is_file() and name.endswith(sfx) and name.startswith(prefix.lower()):
            out.append(p)
    return sorted(out, key=lambda p: p.relative_to(path).as_posix())


def fingerprint(files: Iterable[Path], contents: dict[Path, bytes] | None = None) -> str:
    """sha1 over each file's name and bytes (not its directory or mtime, so a moved or re-copied data folder
    keeps its fingerprint; an edited file changes it)."""
    h = hashlib.sha1()
    for f in files:
        h.update(Path(f).name.encode())
        h.update(b"\0")
        data = contents[f] if contents is not None and f in contents else Path(f).read_bytes()
        h.update(hashlib.sha1(data).digest())
    return h.hexdigest()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building hundreds of thousands of small objects that live on
    (graph records): it halves the load time, and nothing built there forms reference cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _version_key(v: str | None) -> tuple[int, int, str]:
    if v is None:
        return (0, 0, "")
    s = str(v).strip()
    if s.isdigit():
        return (1, int(s), s)
    return (1, -1, s)


class LabelCollector:
    """Collects labels of one load: a second label with the same id keeps the higher version (the later one on a
    tie or when versions are missing) and reports the other as skipped."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._labels: list[Label] = []
        self._index: dict[str, int] = {}
        self.skipped: list[SkippedRecord] = []

    @property
    def full(self) -> bool:
        return self.limit is not None and len(self._index) >= self.limit

    def skip(self, file: str, record: str, reason: str) -> None:
        log.debug("skipped %s record %s: %s", file, record, reason)
        self.skipped.append(SkippedRecord(file, record, reason))

    def add(self, label: Label) -> None:
        i = self._index.get(label.id)
        if i is None:
            if self.full:
                return
            self._index[label.id] = len(self._labels)
            self._labels.append(label)
            return
        old = self._labels[i]
        if _version_key(label.version) >= _version_key(old.version):
            keep, drop = label, old
            self._labels[i] = label  # the kept label takes the first one's place in the order
        else:
            keep, drop = old, label
        self.skip(drop.source_file, drop.id,
                  f"duplicate set_id {label.id}: kept version {keep.version or '?'} from {keep.source_file}, "
                  f"dropped version {drop.version or '?'}")

    def result(self) -> LoadResult:
        return LoadResult(labels=list(self._labels), skipped=self.skipped)


def dedup(items: Iterable[str]) -> list[str]:
    """Stripped, non-empty strings in first-seen order, without repeats."""
    seen: dict[str, None] = {}
    for x in items:
        if isinstance(x, str) and x.strip():
            seen.setdefault(x.strip(), None)
    return list(seen)
