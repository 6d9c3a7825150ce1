"""Outcome records from the store, fitted models in ``learn_models``, predictions for planning.

**Labels.** One record per action of every change that a rollout finished (the ``change`` row
of ``rollout_steps``): ``applied`` is a success; ``rolled_back`` and ``failed`` are failures,
except a failure whose reason is ``unreachable`` (the host, not the patch, failed); ``skipped``
changes (governance, nothing to do, snapshot failed before anything changed) are not
outcomes. A change's outcome is charged to each of its actions (a failed two-package change
counts one failure for each package: conservative, since the engine applies one change as a
unit).

**Refits.** :func:`train` fits on every record and appends a ``learn_models`` row (unless the
newest row was fitted on exactly the same records: same digest); :func:`update_after_rollout`
is what the rollout engine calls when a rollout ends. Predictions use the newest row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from patchwarden.errors import NotFound
from patchwarden.learn.features import ActionFeatures, action_json, features
from patchwarden.learn.model import (
    METHOD,
    FailureModel,
    Observation,
    Prediction,
    data_digest,
    fit,
)
from patchwarden.model import Asset
from patchwarden.policy import LearnPolicy
from patchwarden.prioritize import Action
from patchwarden.store import Store
from patchwarden.store import schema as t

FAILED_RESULTS = frozenset({"rolled_back", "failed"})
"""Change results that count as a failure."""
NOT_THE_PATCH = frozenset({"unreachable"})
"""Failure reasons that say nothing about the patch (left out of the records)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OutcomeRecord:
    """One labelled action outcome."""

    rollout: int
    """The rollout it came from."""
    change: str
    """The change id."""
    action: str
    """The action id."""
    asset: str
    """The asset."""
    ring: str
    """The ring the change ran in."""
    at: dt.datetime
    """When the change finished."""
    result: str
    """``applied``, ``rolled_back`` or ``failed``."""
    reason: str | None
    """The failure reason (None when applied)."""
    features: ActionFeatures
    """The action's features."""

    @property
    def failed(self) -> bool:
        """The change failed (rolled back or failed)."""
        return self.result in FAILED_RESULTS

    def observation(self) -> Observation:
        """The record as the model sees it."""
        return Observation(features=self.features, failed=self.failed)

    def key(self) -> dict[str, Any]:
        """What identifies the record in the data digest."""
        return {"rollout": self.rollout, "change": self.change, "action": self.action,
                "failed": self.failed, **self.features.to_json()}  # fmt: skip


def outcome_records(store: Store) -> list[OutcomeRecord]:
    """Every labelled outcome in the store, oldest first (rules in the module docstring)."""
    s, c, a = t.rollout_steps, t.changes, t.assets
    query = (
        sa.select(
            s.c.rollout_id,
            s.c.change_id,
            s.c.asset_id,
            s.c.ring,
            s.c.state,
            s.c.outcome,
            s.c.finished_at,
            c.c.actions,
            a.c.distro,
            a.c.service,
            a.c.environment,
        )
        .join(c, c.c.id == s.c.change_id)
        .outerjoin(a, a.c.id == s.c.asset_id)
        .where(s.c.step == "change", s.c.state.in_(("done", "failed")))
        .order_by(s.c.finished_at, s.c.rollout_id, s.c.change_id)
    )
    with store.engine.connect() as conn:
        rows = list(conn.execute(query))
    out: list[OutcomeRecord] = []
    for r in rows:
        outcome = r.outcome or {}
        result = str(outcome.get("result", ""))
        reason = outcome.get("reason")
        if result == "applied":
            reason = None
        elif result not in FAILED_RESULTS or reason in NOT_THE_PATCH:
            continue
        for action in r.actions or []:
            try:
                f = features(
                    action,
                    distro=r.distro,
                    service=r.service,
                    environment=r.environment or "prod",
                )
            except ValueError as exc:
                raise ValueError(f"change {r.change_id!r}: {exc}") from exc
            out.append(
                OutcomeRecord(
                    rollout=r.rollout_id,
                    change=r.change_id,
                    action=str(action.get("id", "")),
                    asset=r.asset_id,
                    ring=r.ring,
                    at=r.finished_at,
                    result=result,
                    reason=None if reason is None else str(reason),
                    features=f,
                )
            )
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainedModel:
    """A stored fit (one ``learn_models`` row)."""

    id: int
    trained_at: dt.datetime
    trigger: str
    """``rollout:N`` or ``cli``."""
    observations: int
    failures: int
    data_digest: str
    model: FailureModel

    def to_json(self) -> dict[str, Any]:
        """A JSON-able summary (without the per-group counts)."""
        return {
            "id": self.id,
            "trained_at": self.trained_at.isoformat(),
            "trigger": self.trigger,
            "method": METHOD,
            "observations": self.observations,
            "failures": self.failures,
            "base_rate": round(self.model.base_rate, 4),
            "strengths": {k.value: round(v, 3) for k, v in self.model.strengths.items()},
            "estimated": {k.value: v for k, v in self.model.estimated.items()},
            "data_digest": self.data_digest,
        }


def _trained(row: Any) -> TrainedModel:
    try:
        model = FailureModel.from_json(row.params)
    except ValueError as exc:
        raise ValueError(f"learn_models row {row.id}: {exc}") from exc
    return TrainedModel(
        id=row.id,
        trained_at=row.trained_at,
        trigger=row.trigger,
        observations=row.observations,
        failures=row.failures,
        data_digest=row.data_digest,
        model=model,
    )


def current_model(store: Store) -> TrainedModel | None:
    """The newest stored fit (None before the first)."""
    m = t.learn_models
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(m).order_by(m.c.id.desc()).limit(1)).first()
    return None if row is None else _trained(row)


def train(
    store: Store,
    *,
    trigger: str = "cli",
    now: dt.datetime | None = None,
    records: Iterable[OutcomeRecord] | None = None,
) -> TrainedModel:
    """Fit on every outcome record and store the fit (the newest one when nothing changed)."""
    now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    recs = list(outcome_records(store) if records is None else records)
    digest = data_digest(r.key() for r in recs)
    latest = current_model(store)
    if latest is not None and latest.data_digest == digest:
        return latest
    model = fit(r.observation() for r in recs)
    failures = sum(r.failed for r in recs)
    with store.transaction() as conn:
        new = conn.execute(
            t.learn_models.insert().values(
                trained_at=now,
                trigger=trigger,
                method=METHOD,
                observations=len(recs),
                failures=failures,
                data_digest=digest,
                params=model.to_json(),
            )
        ).inserted_primary_key
    assert new is not None
    return TrainedModel(
        id=int(new[0]),
        trained_at=now,
        trigger=trigger,
        observations=len(recs),
        failures=failures,
        data_digest=digest,
        model=model,
    )


def update_after_rollout(
    store: Store, rollout_id: int, *, now: dt.datetime | None = None
) -> TrainedModel:
    """Refit after rollout ``rollout_id`` ended (called by the rollout engine)."""
    return train(store, trigger=f"rollout:{rollout_id}", now=now)


def predict_actions(
    trained: TrainedModel | None,
    actions: Iterable[Action],
    fleet: Mapping[str, Asset],
    distros: Mapping[str, str | None],
    policy: LearnPolicy,
) -> dict[str, Prediction]:
    """Action id -> prediction; empty when there is no model or it has fewer than
    ``policy.min_observations`` outcomes."""
    if trained is None or trained.observations < policy.min_observations:
        return {}
    out: dict[str, Prediction] = {}
    for a in actions:
        asset = fleet.get(a.asset)
        f = features(
            action_json(a),
            distro=distros.get(a.asset),
            service=asset.service if asset is not None else None,
            environment=asset.environment.value if asset is not None else "prod",
        )
        out[a.id] = trained.model.predict(f)
    return out


def asset_distros(store: Store) -> dict[str, str | None]:
    """Asset id -> stored distro."""
    with store.engine.connect() as conn:
        return {r.id: r.distro for r in conn.execute(sa.select(t.assets.c.id, t.assets.c.distro))}


def find_action(store: Store, ref: str) -> tuple[dict[str, Any], str]:
    """An action of the newest plan by id (``asset/...``) or by ``CHANGE#N``; with its asset."""
    with store.engine.connect() as conn:
        pid = conn.execute(sa.select(sa.func.max(t.plans.c.id))).scalar_one()
        if pid is None:
            raise NotFound("no plan yet (run `patchwarden plan`)")
        rows = list(
            conn.execute(
                sa.select(t.changes.c.id, t.changes.c.asset_id, t.changes.c.actions).where(
                    t.changes.c.plan_id == pid
                )
            )
        )
    for r in rows:
        for action in r.actions:
            if action.get("id") == ref:
                return dict(action), r.asset_id
    raise NotFound(f"no action {ref!r} in plan {pid} (see `patchwarden plan show --json`)")
