"""``tap plan | deploy | destroy``: Terraform on every regional stack in parallel, one line per region, a summary.

Every region runs on its own: one failing never stops, waits for or rolls back another. Each run is ``init``,
then a saved plan (``-detailed-exitcode``), then, for deploy and destroy, ``apply`` of exactly that plan, so the
counts printed are the ones applied.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from analytics_platform.ops.emulator import emulator_only
from analytics_platform.progress import RegionBoard
from analytics_platform.region_runner import RegionOutcome, run_each
from analytics_platform.targeting.deployment import Deployment

PLAN_FILE = "tap.tfplan"
#: A region run's result when its action raised (a run's result, not a job state).
RUN_FAILED = "FAILED"
#: What a per-region run does: normal plan; plan + apply; destroy plan + apply.
ACTIONS = {"plan": ("normal", False), "deploy": ("normal", True), "destroy": ("destroy", True)}


@dataclass
class RegionRun:
    """The outcome of one region's run."""

    region: str
    result: str = "not run"
    added: int = 0
    changed: int = 0
    destroyed: int = 0
    seconds: float = 0.0
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.error is not None


def emulator_only_updates(plan: dict[str, Any]) -> list[str]:
    """Addresses whose planned update is nothing but the local emulator's known answers (see :mod:`.emulator`)."""
    return [
        change["address"]
        for change in plan.get("resource_changes", [])
        if change.get("change", {}).get("actions") == ["update"]
        and emulator_only(change["type"], change["change"].get("after"), change["change"].get("before"))
    ]


def plan_counts(plan: dict[str, Any], ignore: Sequence[str] = ()) -> tuple[int, int, int]:
    """Resources to add, change and destroy in a ``terraform show -json`` plan (a replacement is one of each);
    addresses in ``ignore`` are not counted."""
    added = changed = destroyed = 0
    for change in plan.get("resource_changes", []):
        if change.get("address") in ignore:
            continue
        actions = change.get("change", {}).get("actions", [])
        added += "create" in actions
        changed += actions == ["update"]
        destroyed += "delete" in actions
    return added, changed, destroyed


def outputs_changed(plan: dict[str, Any]) -> bool:
    """Whether a plan gives any of the stack's outputs a new known value (a new output, say): Terraform applies those
    even when no resource changes. An output made unknown by a resource's update follows that update (counted, or
    left out as the emulator's answer)."""
    return any(
        change.get("actions", ["no-op"]) != ["no-op"] and not change.get("after_unknown")
        for change in plan.get("output_changes", {}).values()
    )


def run_regions(
    deployment: Deployment,
    action: Callable[[str, RegionRun], None],
    *,
    verb: str,
    out: Callable[[str], None] = print,
    board: RegionBoard | None = None,
) -> list[RegionRun]:
    """Run ``action(region, run)`` for every region in parallel; a region's exception becomes its FAILED result.
    ``board`` shows the progress (by default plain lines through ``out``)."""
    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:
            out(text)

    board = board or RegionBoard(list(deployment.regions), verb, say=say, live=False)
    runs = {region: RegionRun(region) for region in deployment.regions}

    def finished(outcome: RegionOutcome) -> str:
        run = runs[outcome.region]
        run.seconds = outcome.seconds
        if outcome.error is not None:
            if not isinstance(outcome.error, Exception):
                raise outcome.error  # an interrupt is not a region's failure
            run.result, run.error = RUN_FAILED, f"{type(outcome.error).__name__}: {outcome.error}"
            return f"FAILED after {run.seconds:.1f}s: {run.error.splitlines()[0]}"
        ignored = len(run.details.get("emulator_only", []))
        note = f" ({ignored} emulator-only difference(s) left out, see README)" if ignored else ""
        counts = "" if verb == "refreshing" else f": +{run.added} ~{run.changed} -{run.destroyed}"
        return f"{run.result}{counts} in {run.seconds:.1f}s{note}"

    run_each(list(deployment.regions), lambda region: action(region, runs[region]), board=board, verb=verb,
             finished=finished)  # fmt: skip
    return list(runs.values())


#: Resources holding the platform's data: a deploy that would delete or replace one stops unless allowed.
DATA_RESOURCES = frozenset({"aws_s3_bucket", "aws_dynamodb_table", "aws_kms_key"})


def data_losses(plan: dict[str, Any]) -> list[str]:
    """Addresses of data-holding resources the plan deletes (a replacement deletes too)."""
    return [
        change["address"]
        for change in plan.get("resource_changes", [])
        if change.get("type") in DATA_RESOURCES and "delete" in change.get("change", {}).get("actions", [])
    ]


def terraform_runs(
    deployment: Deployment, command: str, out: Callable[[str], None] = print, *, allow_data_loss: bool = False
) -> list[RegionRun]:
    """``command`` (plan, deploy or destroy) on every region of ``deployment``; synthesizes first. A deploy whose
    plan deletes or replaces a bucket, table or key stops in that region unless ``allow_data_loss``."""
    mode, apply = ACTIONS[command]
    runner = deployment.runner()
    verb = {"plan": "planning", "deploy": "deploying", "destroy": "destroying"}[command]
    # live on a terminal only when the lines go to it (a caller collecting them gets them plain)
    board = RegionBoard(list(deployment.regions), verb, say=out, live=None if out is print else False)

    def action(region: str, run: RegionRun) -> None:
        stack = deployment.stack_dir(region)
        log = f"{command}-{region}"
        events = board.terraform_events(region)
        runner.init(stack, log, deployment.backend_file(region))
        changes = runner.plan(stack, log, plan_file=PLAN_FILE, mode=mode, events=events)
        plan = runner.show_plan(stack, PLAN_FILE)
        ignored = emulator_only_updates(plan) if deployment.local and mode == "normal" else []
        run.added, run.changed, run.destroyed = plan_counts(plan, ignored)
        run.details["emulator_only"] = ignored
        # a plan of nothing but the emulator's known answers is "no changes"; one of new outputs is still applied
        if not changes or not (run.added or run.changed or run.destroyed or outputs_changed(plan)):
            run.result = "no changes"
            return
        if not apply:
            run.result = "changes planned"
            return
        losing = data_losses(plan) if command == "deploy" and not allow_data_loss else []
        if losing:
            run.result = "refused"
            raise RuntimeError(
                f"the plan deletes or replaces {', '.join(losing)} (their data with them); nothing applied. "
                "Check the plan (tap plan), then deploy with --allow-data-loss if that is meant"
            )
        board.start(region, "applying")  # the plan's progress starts over with the apply's
        board.plan(region, run.added + run.changed + run.destroyed)
        runner.apply_plan(stack, log, PLAN_FILE, events)
        if command == "deploy":
            runner.settle(stack, log)
        run.result = "destroyed" if command == "destroy" else "applied"

    out(f"synthesizing {deployment.env} ({', '.join(deployment.regions)})")
    deployment.synthesize()
    where = f"the local endpoint {deployment.endpoint}" if deployment.local else "AWS"
    out(f"{command}: {len(deployment.regions)} region(s) of {deployment.env} on {where}, in parallel")
    with board:
        return run_regions(deployment, action, verb=verb, out=out, board=board)


def summary_table(runs: Sequence[RegionRun], *, drift: bool = False) -> str:
    """The summary: region, result, added / changed / destroyed (``drift``: drifted resources), duration; then each
    failure's reason."""
    counts = ("drifted",) if drift else ("added", "changed", "destroyed")
    header = ("region", "result", *counts, "duration")

    def numbers(run: RegionRun) -> tuple[str, ...]:
        return (str(run.changed),) if drift else (str(run.added), str(run.changed), str(run.destroyed))

    rows = [header] + [(r.region, r.result, *numbers(r), f"{r.seconds:.1f}s") for r in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for run in runs:
        if run.error:
            lines.append(f"{run.region}: {run.error}")
    return "\n".join(lines)


def confirm_destroy(deployment: Deployment, assume_yes: bool) -> bool:
    """``destroy`` asks for the environment's name unless ``--yes``; without a terminal it refuses, and the end of
    input (Ctrl-D) is a no."""
    if assume_yes:
        return True
    if sys.stdin is None or not sys.stdin.isatty():
        print("error: destroy needs --yes when not run from a terminal", file=sys.stderr)
        return False
    stacks = ", ".join(deployment.stack_dir(region).name for region in deployment.regions)
    data = ", ".join(deployment.config.names(region).bucket for region in deployment.regions)
    print(f"destroy {deployment.env}: stacks {stacks}; every object version in {data} is deleted with them")
    prompt = f"type '{deployment.env}' to destroy, anything else to stop: "
    try:
        answer = input(prompt)
    except EOFError:
        return False
    return answer.strip() == deployment.env
