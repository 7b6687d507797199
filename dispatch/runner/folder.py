"""The run folder: one configuration per folder, and the models of ``train:`` arms."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from dispatch.errors import ConfigError
from dispatch.experiment import ExperimentPlan, PolicyPlan
from dispatch.io import atomic_write_json, atomic_write_text
from dispatch.lock import LOCK_NAME

__all__ = ["prepare_run_dir", "train_arms"]


def prepare_run_dir(plan: ExperimentPlan, run_dir: Path) -> None:
    """Create the folder, or check that it holds a run of this very configuration.

    Called with the folder's lock held (the lock file itself does not make it a run).
    """
    cfg_path = run_dir / "config.resolved.yaml"
    resolved = plan.resolved()
    if run_dir.exists() and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
        if not cfg_path.exists():
            raise ConfigError(
                f"run folder {run_dir} exists and is not a run of this experiment; "
                "choose another with --out or delete it",
                field="--out",
            )
        try:
            old = yaml.safe_load(cfg_path.read_text()) or {}
        except yaml.YAMLError:
            old = {}
        if old.get("fingerprint") != resolved["fingerprint"]:
            raise ConfigError(
                f"run folder {run_dir} holds a run of a different configuration "
                f"(scenarios, policies, seeds, objective, metrics or baseline changed); "
                "use --out for a new folder, or delete the old one to start afresh",
                field="--out",
            )
    atomic_write_text(cfg_path, yaml.safe_dump(resolved, sort_keys=False))


def train_arms(plan: ExperimentPlan, run_dir: Path, progress: bool) -> dict[str, dict[str, Any]]:
    """Train the ``train:`` policies (once per run folder); their runtime parameters."""
    extra: dict[str, dict[str, Any]] = {}
    for pol in plan.policies:
        if pol.train is None:
            continue
        extra[pol.label] = {"model": str(_trained_model(pol, run_dir, progress))}
    return extra


def _trained_model(pol: PolicyPlan, run_dir: Path, progress: bool) -> Path:
    """The model folder of a ``train:`` policy, training it unless this run already did.

    ``models/<label>.json`` records a finished training (with the training config's digest,
    so an edited config trains again); a ``model.zip`` without that record is a training
    that finished just before an interruption and is adopted as is.
    """
    marker = run_dir / "models" / f"{pol.label}.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("train_digest") == pol.train_digest and Path(info["model"]).exists():
            return Path(info["model"])
    try:
        training = importlib.import_module("dispatch.training")
    except ImportError as exc:
        raise ConfigError(
            f"policy '{pol.label}' needs dispatch.training, which failed to import ({exc}); "
            "install the learning extra: pip install -e '.[learn]'",
            field="policies",
        ) from None
    target = run_dir / "models" / pol.label
    if (target / "model.zip").exists():
        model = target  # trained before an interruption, the marker not yet written
    else:
        if progress:
            print(f"training '{pol.label}' from {pol.train} -> {target}", file=sys.stderr)
        result = training.train(pol.train, out=target, overrides=pol.train_overrides or None)
        model = Path(result) if isinstance(result, str | os.PathLike) else target
    atomic_write_json(
        marker,
        {"model": str(model.resolve()), "train": pol.train, "train_digest": pol.train_digest},
    )
    return model.resolve()
