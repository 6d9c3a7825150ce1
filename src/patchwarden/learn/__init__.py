"""Learning from outcomes: a patch-failure model fitted on rollout outcomes (issue 6 §2).

:mod:`~patchwarden.learn.features` (what an action is), :mod:`~patchwarden.learn.model`
(hierarchical beta-binomial smoothing), :mod:`~patchwarden.learn.store` (outcome records,
stored fits, predictions for planning), :mod:`~patchwarden.learn.calibration` (held-out
Brier score, log loss, reliability curve against the base-rate baseline).
"""

from __future__ import annotations

from patchwarden.learn.features import ActionFeatures, features
from patchwarden.learn.model import FailureModel, Level, Observation, Prediction, fit
from patchwarden.learn.store import (
    OutcomeRecord,
    TrainedModel,
    current_model,
    outcome_records,
    predict_actions,
    train,
    update_after_rollout,
)

__all__ = [
    "ActionFeatures",
    "FailureModel",
    "Level",
    "Observation",
    "OutcomeRecord",
    "Prediction",
    "TrainedModel",
    "current_model",
    "features",
    "fit",
    "outcome_records",
    "predict_actions",
    "train",
    "update_after_rollout",
]
