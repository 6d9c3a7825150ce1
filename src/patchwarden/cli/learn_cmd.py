"""``patchwarden learn train|report|predict``: the patch-failure model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from patchwarden.cli.main import Exit, _fail, _policy, _print_json, _store, app, out
from patchwarden.errors import NotFound
from patchwarden.learn.calibration import NotEnoughOutcomes, evaluate, plot_reliability
from patchwarden.learn.features import features
from patchwarden.learn.store import (
    asset_distros,
    current_model,
    find_action,
    outcome_records,
    train,
)

learn_app = typer.Typer(
    help="The patch-failure model: P(failure) per action, learnt from rollout outcomes.",
    no_args_is_help=True,
)
app.add_typer(learn_app, name="learn")


@learn_app.command("train")
def learn_train(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Refit the model on every recorded rollout outcome (rollouts also refit when they end)."""
    with _store() as store:
        try:
            trained = train(store, trigger="cli")
        except ValueError as exc:
            raise _fail(str(exc), Exit.STORE) from exc
    data = trained.to_json()
    if as_json:
        _print_json(data)
        return
    out.print(
        f"model {trained.id}: {trained.observations} outcomes, {trained.failures} failures, "
        f"base rate {trained.model.base_rate:.1%}; prior strengths "
        + ", ".join(f"{k} {v}" for k, v in data["strengths"].items())
    )


@learn_app.command("report")
def learn_report(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the PNG and JSON.")],
    test_share: Annotated[
        float, typer.Option(min=0.05, max=0.95, help="Share of outcomes held out.")
    ] = 0.3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Calibration on held-out outcomes: reliability curve PNG, Brier score, log loss, baseline."""
    with _store() as store:
        try:
            cal = evaluate(outcome_records(store), test_share=test_share)
        except NotEnoughOutcomes as exc:
            raise _fail(str(exc), Exit.USAGE) from exc
        except ValueError as exc:
            raise _fail(str(exc), Exit.STORE) from exc
    png = plot_reliability(cal, out_dir / "reliability.png")
    data = {**cal.to_json(), "png": str(png)}
    (out_dir / "calibration.json").write_text(json.dumps(data, indent=2) + "\n")
    if as_json:
        _print_json(data)
        return
    table = Table("", "Brier", "log loss")
    table.add_row("model", f"{cal.brier:.4f}", f"{cal.log_loss:.4f}")
    table.add_row(
        f"base rate {cal.baseline_rate:.1%}", f"{cal.baseline_brier:.4f}",
        f"{cal.baseline_log_loss:.4f}",
    )  # fmt: skip
    out.print(f"held out {cal.test} of {cal.train + cal.test} outcomes ({escape(cal.split)})")
    out.print(table)
    out.print(escape(cal.verdict))
    out.print(f"reliability curve: {escape(str(png))}")


@learn_app.command("predict")
def learn_predict(
    action: Annotated[str, typer.Argument(help="An action id of the newest plan (asset/...).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """P(failure) of one action of the newest plan, with its basis (level and counts)."""
    policy = _policy()
    with _store() as store:
        try:
            found, asset_id = find_action(store, action)
            trained = current_model(store)
            asset = store.get_asset(asset_id)
            distros = asset_distros(store)
        except NotFound as exc:
            raise _fail(str(exc), Exit.USAGE) from exc
        except ValueError as exc:
            raise _fail(str(exc), Exit.STORE) from exc
    if trained is None:
        raise _fail("no model yet (run a rollout, or `patchwarden learn train`)", Exit.USAGE)
    f = features(
        found,
        distro=distros.get(asset_id),
        service=asset.service if asset is not None else None,
        environment=asset.environment.value if asset is not None else "prod",
    )
    prediction = trained.model.predict(f)
    used = trained.observations >= policy.learn.min_observations
    data = {
        "action": action,
        "features": f.to_json(),
        "model": trained.id,
        "used_for_planning": used,
        **prediction.to_json(),
    }
    if as_json:
        _print_json(data)
        return
    out.print(f"{escape(action)}: P(failure) {prediction.probability:.1%}")
    out.print(f"basis: {escape(prediction.basis())}")
    for step in prediction.path:
        out.print(
            f"  {step.level.value:<9} {escape(step.key)}: {step.failures}/{step.trials} failed"
            f" -> {step.estimate:.1%}"
        )
    if not used:
        out.print(
            f"(model {trained.id} has {trained.observations} outcomes, fewer than "
            f"learn.min_observations {policy.learn.min_observations}: plans do not use it)"
        )
