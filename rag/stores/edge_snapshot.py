"""Private read-only copies of a qdrant-edge shard, so several reader processes can serve one embedded KB.

Why copies: qdrant-edge-py 0.9 has no read-only open. `EdgeShard.load` always opens (and flock()s) the shard's WAL,
so a second process — `drugrag ask` next to a running `drugrag serve`, or the UI next to the API — fails with
"Can't init WAL: Kind(WouldBlock)". The Rust crate has a read-only follower (`ReadOnlyEdgeShard`, qdrant-edge 0.8)
but the Python binding does not expose it. So a reader copies the shard directory (segments, config and WAL, holes
kept sparse: ~0.1 s and the size of the segments for the full KB) into a temporary directory and loads the copy.

Consistency: the copy is taken under a shared flock on the store's `.drugrag.lock`; a writer (`drugrag ingest`)
holds that lock exclusively for as long as it has the store open, so a reader never copies a half-written shard and
fails clearly instead while an ingest runs. After the copy the lock is released: a reader serves the KB as it was
when it opened (restart it to see a later ingest). Copies are removed on close, at exit, and — when a process died
without either — by the next reader, which sweeps copies whose process is gone.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from rag.core.errors import StoreUnavailable

log = logging.getLogger(__name__)

PREFIX = "drugrag-edge-ro-"
SKIP = {".drugrag.lock"}


def _data_ranges(fd: int, size: int) -> Iterator[tuple[int, int]]:
    off = 0
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:  # only a hole is left
                return
            raise
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, end
        off = end


def _copy_sparse(src: str, dst: str) -> None:
    """Copy one file keeping its holes (the WAL preallocates 32 MiB sparse segments)."""
    size = os.path.getsize(src)
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        try:
            ranges = list(_data_ranges(fi.fileno(), size))
        except OSError as e:
            if e.errno != errno.EINVAL:  # EINVAL: this filesystem has no SEEK_DATA; copy it whole
                raise
            ranges = [(0, size)]
        for start, end in ranges:
            fi.seek(start)
            fo.seek(start)
            left = end - start
            while left > 0 and (buf := fi.read(min(left, 1 << 20))):
                fo.write(buf)
                left -= len(buf)
        fo.truncate(size)
    shutil.copystat(src, dst)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(base: Path | None = None) -> int:
    """Remove reader copies left by processes that no longer run; returns how many."""
    root = Path(base or tempfile.gettempdir())
    n = 0
    for d in root.glob(PREFIX + "*"):
        try:
            pid = int(d.name[len(PREFIX):].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)
            n += 1
    return n


def make_copy(src: Path, base: Path | None = None) -> Path:
    """Copy the shard at `src` into a fresh temporary directory (the caller holds the shared lock)."""
    sweep_stale(base)
    dst = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))
    try:
        shutil.copytree(src, dst, dirs_exist_ok=True, copy_function=_copy_sparse,
                        ignore=lambda _d, names: [n for n in names if n in SKIP])
    except BaseException:
        shutil.rmtree(dst, ignore_errors=True)
        raise
    log.info("vector store %s opened read-only through a private copy at %s", src, dst)
    return dst


def copy_for_reading(path: Path, lock_name: str, busy: Callable[[BaseException], Exception]) -> Path:
    """A private copy of the shard at `path`, taken under a shared flock on `path/lock_name` (released after)."""
    try:
        lock = open(path / lock_name, "a")
    except OSError as e:
        raise StoreUnavailable(f"cannot open the vector store at {path}: {e}") from e
    try:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            raise busy(e) from e
        try:
            return make_copy(path)
        except OSError as e:
            raise StoreUnavailable(f"cannot copy the vector store at {path} for reading: {e}") from e
    finally:
        lock.close()  # releases the shared lock: the copy is ours


def remove_copy(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
