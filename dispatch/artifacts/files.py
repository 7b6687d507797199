"""A trained run's files: their names, and finding a model and its run folder.

Reads only JSON and YAML, so it is cheap, needs no torch and is safe on any file.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dispatch.errors import ConfigError

__all__ = [
    "BEST_MODEL_FILE",
    "CHECKPOINTS",
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "ENV_FILE",
    "MODEL_FILE",
    "NORM_SUFFIX",
    "SUMMARY_FILE",
    "VERSIONS_FILE",
    "TrainedRun",
    "checkpoint_file",
    "locate",
    "norm_file",
    "read_json",
]

MODEL_FILE = "model.zip"
BEST_MODEL_FILE = "best_model.zip"
CHECKPOINT_DIR = "checkpoints"
ENV_FILE = "env.json"
CONFIG_FILE = "config.yaml"
SUMMARY_FILE = "summary.json"
VERSIONS_FILE = "versions.json"
NORM_SUFFIX = ".vecnormalize.json"
CHECKPOINTS = {"final": MODEL_FILE, "best": BEST_MODEL_FILE}

#: ``algo`` of a training config -> the algorithm class's name.
ALGOS = {"ppo": "PPO", "maskable_ppo": "MaskablePPO"}


# -- names ------------------------------------------------------------------------------------
def norm_file(model_zip: str | Path) -> Path:
    """The normalisation statistics of a model file: ``NAME.zip`` -> ``NAME.vecnormalize.json``."""
    p = Path(model_zip)
    return p.with_name(p.name.removesuffix(".zip") + NORM_SUFFIX)


def checkpoint_file(run_dir: str | Path, num_timesteps: int) -> Path:
    """A periodic snapshot's model file (the naming of SB3's ``CheckpointCallback``)."""
    return Path(run_dir) / CHECKPOINT_DIR / f"model_{int(num_timesteps)}_steps.zip"


def _legacy_norm_pickle(model_zip: Path) -> Path:
    """Where run folders written before the JSON statistics kept them (a pickle)."""
    stem = model_zip.name.removesuffix(".zip")
    if stem.startswith("model_") and stem.endswith("_steps"):
        return model_zip.with_name(f"model_vecnormalize_{stem.removeprefix('model_')}.pkl")
    if stem == "model":
        return model_zip.with_name("vecnormalize.pkl")
    return model_zip.with_name(f"{stem.removesuffix('_model')}_vecnormalize.pkl")


def read_json(path: Path, *, field: str | None = None) -> dict[str, Any]:
    """A JSON object from ``path``; ``{}`` if there is no such file."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(
            f"cannot read it as JSON ({exc})", source=str(path), field=field
        ) from None
    if not isinstance(data, dict):
        raise ConfigError("expected a JSON object", source=str(path), field=field)
    return data


# -- locating a model ---------------------------------------------------------------------------
@dataclass
class TrainedRun:
    """A model file and what its run folder (if any) says about it. Reading it runs nothing."""

    model: Path
    data: dict[str, Any]  # the zip's ``data`` entry as plain JSON (never deserialized)
    run_dir: Path | None  # None: a model file outside a `dispatch train` run folder
    env: dict[str, Any] = field(default_factory=dict)  # env.json
    config: dict[str, Any] | None = None  # config.yaml
    field: str | None = None  # the parameter that named it (for error messages)

    @property
    def kind(self) -> str | None:
        """``pull`` or ``batch``, as the run recorded it (``None`` outside a run)."""
        if self.env.get("env") is not None:
            return str(self.env["env"])
        return None if self.config is None else str(self.config.get("env", "pull"))

    @property
    def algo(self) -> str | None:
        algo = self.env.get("algo") or (self.config or {}).get("algo")
        return ALGOS.get(algo) if algo else None

    def env_kwargs(self) -> dict[str, Any]:
        """The environment's constructor arguments (``{}`` outside a run folder)."""
        if self.env:
            return dict(self.env.get("env_kwargs") or {})
        if self.config is not None:
            return self.train_config().env_kwargs()
        return {}

    def train_config(self):
        from dispatch.train_config import TrainConfig

        return TrainConfig.model_validate(self.config)

    def summary(self) -> dict[str, Any]:
        return read_json(self.run_dir / SUMMARY_FILE) if self.run_dir is not None else {}

    def versions(self) -> dict[str, Any]:
        return read_json(self.run_dir / VERSIONS_FILE) if self.run_dir is not None else {}

    def error(self, message: str) -> ConfigError:
        return ConfigError(message, source=str(self.model), field=self.field)


def _read_model_data(model: Path, field: str | None) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(model) as z:
            data = json.loads(z.read("data"))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ConfigError(
            f"not a stable-baselines3 model archive ({type(exc).__name__}: {exc}); expected "
            f"the {MODEL_FILE} written by `dispatch train`",
            source=str(model),
            field=field,
        ) from None
    if not isinstance(data, dict):
        raise ConfigError("not a stable-baselines3 model archive", source=str(model), field=field)
    return data


def _run_folder(folder: Path) -> Path | None:
    for cand in (folder, folder.parent) if folder.name == CHECKPOINT_DIR else (folder,):
        if (cand / ENV_FILE).is_file() or (cand / CONFIG_FILE).is_file():
            return cand
    return None


def locate(
    source: str | Path,
    checkpoint: Literal["final", "best"] = "final",
    *,
    field: str | None = None,
) -> TrainedRun:
    """The model of a run folder (``checkpoint`` final or best) or a model ``.zip``.

    Reads only JSON and YAML (the run's ``env.json`` and ``config.yaml``, the zip's
    ``data``), so it is cheap, needs no torch and is safe on any file.
    """
    import yaml

    p = Path(source).expanduser()
    if p.is_dir():
        model = p / CHECKPOINTS[checkpoint]
        if not model.is_file():
            raise ConfigError(
                f"no {model.name} in {p}; is it a run folder written by `dispatch train`"
                + (" with evaluation on?" if checkpoint == "best" else "?"),
                source=str(p),
                field=field,
            )
    elif p.is_file():
        model = p
    else:
        raise ConfigError(
            f"no run folder or model file at '{source}'", source=str(source), field=field
        )
    data = _read_model_data(model, field)
    run_dir = _run_folder(model.parent)
    env: dict[str, Any] = {}
    config = None
    if run_dir is not None:
        env = read_json(run_dir / ENV_FILE, field=field)
        if (run_dir / CONFIG_FILE).is_file():
            try:
                config = yaml.safe_load((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                raise ConfigError(
                    f"cannot read the run's config ({exc})",
                    source=str(run_dir / CONFIG_FILE),
                    field=field,
                ) from None
            config = config if isinstance(config, dict) else None
    return TrainedRun(model=model, data=data, run_dir=run_dir, env=env, config=config, field=field)
