"""Writing results to disk atomically: write to a temporary file, then rename.

Every file the project writes into a run folder, a training folder or next to an exported
model goes through this module, so a reader (a resumed run, a second process, a crash
followed by a restart) never sees half a file. The temporary file sits in the target's
folder (a rename across file systems would not be atomic) under a name unique to the
writing process and call (``mkstemp``), so two processes writing the same file never
collide; the last rename wins, and either version is complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


def _publish(tmp: str, path: Path) -> None:
    """Give the temporary file normal permissions (mkstemp makes it 0600), then rename."""
    os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, path)


def publish(tmp: str | Path, path: Path) -> None:
    """Atomically move a finished file that a library wrote under a temporary name (in
    ``path``'s folder) onto ``path``."""
    _publish(str(tmp), Path(path))


def find_file(path: str, base: Path | None) -> Path | None:
    """A relative path next to the config file that names it (``base``), else in the current
    directory; an absolute path as is. ``None`` when it does not exist."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p if p.exists() else None
    for root in ([base] if base is not None else []) + [Path.cwd()]:
        if (root / p).exists():
            return (root / p).resolve()
    return None


@contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A fresh temporary path next to ``path``; renamed onto ``path`` when the block ends
    without an exception, deleted otherwise.

    For writers that insist on a file name (``savefig``, a library's ``save``); ``suffix``
    lets them infer the format (``".png"``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        _publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_synced(path: Path, data: bytes | str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    _write_synced(path, text)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _write_synced(path, bytes(data))


def atomic_write_json(path: Path, obj: Any) -> None:
    from dispatch.metrics import _clean

    atomic_write_text(path, json.dumps(_clean(obj), indent=2, sort_keys=True, default=str))


def atomic_write_frame(path: Path, df, fmt: str | None = None) -> None:
    """Write a DataFrame as Parquet or CSV (by suffix) via a temporary file."""
    path = Path(path)
    fmt = fmt or ("parquet" if path.suffix in (".parquet", ".pq") else "csv")
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)


def write_simulation_outputs(result, out: Path) -> None:
    """metrics.json, timeseries.csv and, when recorded, tasks.parquet in ``out``."""
    out = Path(out)
    atomic_write_json(out / "metrics.json", result.to_dict())
    atomic_write_frame(out / "timeseries.csv", result.timeseries_frame())
    if result.records is not None:
        atomic_write_frame(out / "tasks.parquet", result.records)
