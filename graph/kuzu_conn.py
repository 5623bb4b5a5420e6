"""KuzuConnection: one kuzu database file opened read-write or read-only, with the statement plumbing the kuzu
graph store needs (parameter check, rows, Arrow columns, transactions, COPY).

One read-write process per database: kuzu locks the file against other processes, and this module refuses a second
read-write handle on the same file inside one process too (kuzu does not lock that case and two writers would
corrupt it). Several read-only handles may share a file while no read-write one holds it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kuzu
import pyarrow as pa  # kuzu's COPY scans Arrow tables; pandas 3 string columns crash it

from graph import cypher as C
from kb_loaders.errors import StoreUnavailable

UPDATE_BATCH = 5_000

_open_lock = threading.Lock()
# resolved db file → the connections open on it (weak: one dropped without close() frees its file, as kuzu does)
_open_paths: dict[str, list[weakref.ref[KuzuConnection]]] = {}


def db_file(path: Path) -> Path:
    """kuzu 0.11 keeps a database in one file (plus `<file>.wal`); an existing directory gets `graph.kuzu` inside."""
    p = Path(path).expanduser()
    return p / "graph.kuzu" if p.is_dir() else p


class KuzuConnection:
    def __init__(self, path: Path | str, read_only: bool = False) -> None:
        self.path = db_file(Path(path))
        self.read_only = read_only
        self.lock = threading.RLock()
        self.closed = True
        self._key = str(self.path.resolve())
        with _open_lock:
            held = [c for ref in _open_paths.get(self._key, []) if (c := ref()) is not None and not c.closed]
            if held and (not read_only or not all(c.read_only for c in held)):
                raise StoreUnavailable(
                    f"kuzu graph database {self.path} is already open read-write in this process; "
                    "close that store first (one read-write handle per database)")
            if read_only and not self.path.exists():
                raise StoreUnavailable(f"kuzu graph database {self.path} does not exist (run ingest first)")
            try:
                if not read_only:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = kuzu.Database(str(self.path), read_only=read_only)
                self._conn = kuzu.Connection(self._db)
            except (RuntimeError, OSError) as e:
                raise StoreUnavailable(_open_error(self.path, e)) from e
            _open_paths[self._key] = [*(weakref.ref(c) for c in held), weakref.ref(self)]
            self.closed = False

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            try:
                self._conn.close()
                self._db.close()
            finally:
                with _open_lock:
                    live = [ref for ref in _open_paths.get(self._key, []) if (c := ref()) is not None
                            and c is not self and not c.closed]
                    if live:
                        _open_paths[self._key] = live
                    else:
                        _open_paths.pop(self._key, None)

    def run(self, query: str, params: Mapping[str, Any] | None = None) -> kuzu.QueryResult:
        C.check_params(query, params)
        with self.lock:
            if self.closed:
                raise StoreUnavailable(f"kuzu graph store {self.path} is closed")
            res = self._conn.execute(query, dict(params or {}))
        if isinstance(res, list):  # several statements in one string: never sent by this module
            raise ValueError("one Cypher statement per call")
        return res

    def rows(self, query: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        res = self.run(query, params)
        cols = res.get_column_names()
        out = [dict(zip(cols, row, strict=True)) for row in res.get_all()]
        res.close()
        return out

    def columns(self, query: str, params: Mapping[str, Any] | None = None) -> dict[str, list[Any]]:
        """Column-wise result via Arrow: much faster than row tuples for whole-table reads."""
        res = self.run(query, params)
        cols = res.get_column_names()
        if not res.has_next():
            res.close()
            return {c: [] for c in cols}
        tab = res.get_as_arrow(chunk_size=1_000_000)
        res.close()
        return {c: tab.column(c).to_pylist() for c in cols}

    def scalar(self, query: str, params: Mapping[str, Any] | None = None) -> Any:
        rows = self.rows(query, params)
        return next(iter(rows[0].values())) if rows else None

    @contextmanager
    def tx(self) -> Iterator[None]:
        with self.lock:
            self.writable()
            self.run(C.KUZU_BEGIN)
            try:
                yield
            except BaseException:
                try:
                    self.run(C.KUZU_ROLLBACK)
                except RuntimeError:  # kuzu already rolled back after a failed statement
                    pass
                raise
            self.run(C.KUZU_COMMIT)

    def writable(self) -> None:
        if self.read_only:
            raise StoreUnavailable(f"kuzu graph database {self.path} is open read-only; writing needs read_only=False")

    def tables(self) -> list[str]:
        return [r["name"] for r in self.rows(C.KUZU_SHOW_TABLES)]

    def copy(self, table: str, columns: dict[str, list[Any]]) -> None:
        data = pa.table({k: pa.array(v, type=pa.string()) for k, v in columns.items()})
        self.run(C.kuzu_copy(table), {"data": data})

    def batched(self, query: str, rows: list[dict[str, Any]]) -> None:
        for i in range(0, len(rows), UPDATE_BATCH):
            self.run(query, {"rows": rows[i: i + UPDATE_BATCH]})


def _open_error(path: Path, e: BaseException) -> str:
    msg = str(e).strip()
    low = msg.lower()
    if "lock" in low:
        return (f"kuzu graph database {path} is in use by another process (kuzu allows one read-write process per "
                f"database; stop the other process, e.g. a running API or ingest, or wait for it): {msg}")
    if "not a valid" in low or "corrupt" in low:
        return f"{path} is not a kuzu graph database (move it away or point the store elsewhere): {msg}"
    return f"cannot open kuzu graph database {path}: {msg}"
