"""Provenance of a result: which Python, which library versions, which git revision.

Every artefact that someone may want to reproduce records it: an experiment run folder
(``versions.json``), a training run folder (``versions.json``) and an exported model's
sidecar (``versions.export``). Each names the packages that shape *its* result (the
simulator's for experiments, the learning stack's for training and export), so
:func:`versions` takes the list of packages; everything else is collected the same way
everywhere.

The git revision is that of the source tree ``dispatch`` is imported from, and only when
that tree is a git checkout (an installed wheel records ``None``, never the revision of
some unrelated repository the process happens to run in). ``git_dirty`` says whether
tracked files had uncommitted changes, i.e. whether the revision alone reproduces the code.
"""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["EXPERIMENT_PACKAGES", "LEARNING_PACKAGES", "git_revision", "versions"]

#: Libraries that decide the numbers of a simulated experiment.
EXPERIMENT_PACKAGES = ("numpy", "simpy", "ortools", "gymnasium", "pandas", "scipy", "pydantic")
#: Libraries that decide a trained or exported model.
LEARNING_PACKAGES = ("torch", "stable-baselines3", "sb3-contrib", "gymnasium", "numpy")

_GIT_TIMEOUT_S = 10


def _source_root() -> Path:
    import dispatch

    return Path(dispatch.__file__).resolve().parents[1]


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip()


def git_revision(root: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit hash, tracked files changed) of the source tree; (None, None) outside git."""
    root = _source_root() if root is None else Path(root)
    if not (root / ".git").exists():  # a directory, or a file in a git worktree
        return None, None
    rev = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    if rev is None or status is None:
        return None, None
    return rev or None, bool(status)


def versions(packages: Iterable[str]) -> dict[str, Any]:
    """Python, platform, ``packages`` (``None`` when not installed), dispatch and git."""
    import dispatch

    out: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in packages:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    out["dispatch"] = dispatch.__version__
    rev, dirty = git_revision()
    out["git_revision"] = rev
    out["git_dirty"] = dirty
    return out
