"""The files of a trained run, and loading a model from them without running code from them.

``dispatch train`` writes a run folder; the ``learned`` policy, ``dispatch export`` and
experiments read it. This module is the one place that knows its files:

==================================  ==============================================================
file                                content
==================================  ==============================================================
``config.yaml``                     the resolved training config (``TrainConfig``)
``env.json``                        env kind and arguments, algo, observation and action names
                                    and spaces, scenario digest
``versions.json``, ``summary.json``  provenance and the training's outcome
``model.zip``                       the final model (stable-baselines3 ``save``)
``best_model.zip``                  the best model on the evaluation seeds (``checkpoint=best``)
``checkpoints/model_N_steps.zip``   periodic snapshots (``checkpoint_freq``)
``<model>.vecnormalize.json``       the ``VecNormalize`` statistics of that model file
                                    (``model.vecnormalize.json``, ...)
==================================  ==============================================================

One naming rule: the statistics of ``path/NAME.zip`` are ``path/NAME.vecnormalize.json``
(:func:`norm_file`); a checkpoint's run folder is the parent of ``checkpoints/``.

Loading never unpickles
-----------------------
A stable-baselines3 ``.zip`` stores the model's class parameters as JSON, except objects
JSON cannot hold (policy class, spaces, schedules, ``policy_kwargs`` with an activation
class, buffers), which it stores as pickled payloads under ``:serialized:`` keys; its
weights are torch ``.pth`` files. SB3's own ``load`` unpickles all of it, and so would run
whatever code a tampered file carries. :func:`load_model` instead

* reads the ``data`` JSON as plain JSON and never decodes a ``:serialized:`` entry;
* names the policy class from the readable part of that entry and accepts only
  ``ActorCriticPolicy`` (PPO) and ``MaskableActorCriticPolicy`` (MaskablePPO);
* rebuilds the spaces from ``env.json`` (or the environment the run's arguments build, or
  the spaces the caller passes, e.g. ``dispatch export --scenario``) and ``policy_kwargs``
  from ``config.yaml`` when the zip holds them pickled (checked against their readable
  description); no schedule is needed for inference;
* constructs the policy as SB3 does and loads ``policy.pth`` with
  ``torch.load(..., weights_only=True)`` (tensors only; the optimizer state and
  ``pytorch_variables.pth`` are not read);
* reads the normalisation statistics from JSON (:class:`NormStats`).

A model that cannot be rebuilt that way (a zip from elsewhere without its run folder's
``env.json``, ``policy_kwargs`` pickled without a ``config.yaml``, an unknown policy class,
statistics only as an older ``vecnormalize.pkl``) is refused with one line, unless the
caller passes ``trust=True`` (``-p trust=true`` for the ``learned`` policy,
``dispatch export --trust-model``): then, and only then, SB3's ``load`` and ``pickle`` are
used. Pass it only for files whose source you trust.

Modules: :mod:`~dispatch.artifacts.files` (names, :func:`locate`),
:mod:`~dispatch.artifacts.stats` (:class:`NormStats`, spaces as JSON) and
:mod:`~dispatch.artifacts.loading` (:func:`load_model`, the trust path). Importing the
package imports neither torch nor stable-baselines3.
"""

from __future__ import annotations

from dispatch.artifacts.files import (
    BEST_MODEL_FILE,
    CHECKPOINT_DIR,
    CHECKPOINTS,
    CONFIG_FILE,
    ENV_FILE,
    MODEL_FILE,
    NORM_SUFFIX,
    SUMMARY_FILE,
    VERSIONS_FILE,
    TrainedRun,
    checkpoint_file,
    locate,
    norm_file,
    read_json,
)
from dispatch.artifacts.loading import LoadedModel, load_model
from dispatch.artifacts.stats import NormStats, space_from_json, space_to_json

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
    "LoadedModel",
    "NormStats",
    "TrainedRun",
    "checkpoint_file",
    "load_model",
    "locate",
    "norm_file",
    "read_json",
    "space_from_json",
    "space_to_json",
]
