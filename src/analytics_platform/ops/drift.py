"""``tap drift``: what changed in the deployed regions outside Terraform, and where regions differ.

Per region a refresh-only plan (``-detailed-exitcode``) compares the deployed resources with the state Terraform
left; each drifted resource is reported with its changed attributes. Across regions, the refreshed states are
compared resource by resource after the region's own name is taken out of every value, so an attribute that
differs between regions (a queue's timeout, a bucket's versioning) is named with the region(s) that differ
from the others. With ``publish`` the number of drifted resources of each region goes to that region's
CloudWatch as ``ConfigurationDrift``, which each stack's drift alarm watches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from analytics_platform.infra.names import DRIFT_METRIC, DRIFT_NAMESPACE, stack_id
from analytics_platform.ops.drift_compare import Drift, cross_region_drift, deployed_drift
from analytics_platform.ops.runs import RegionRun, run_regions
from analytics_platform.targeting.deployment import Deployment

DRIFT_PLAN = "tap-drift.tfplan"


def _state_types(plan: Mapping[str, Any]) -> set[str]:
    """Resource types the stack manages: the refreshed state's, and those of drifted resources (a companion deleted
    outside Terraform is gone from the refreshed state, yet it still owns its attribute: it is reported itself)."""
    module = plan.get("prior_state", {}).get("values", {}).get("root_module", {})
    drifted = {e["type"] for e in plan.get("resource_drift", []) if e.get("mode") == "managed"}
    return {r["type"] for r in module.get("resources", [])} | drifted


def _state_resources(plan: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Managed resources of the refreshed state in a plan: ``{address: values}``."""
    module = plan.get("prior_state", {}).get("values", {}).get("root_module", {})
    return {r["address"]: r.get("values") or {} for r in module.get("resources", []) if r.get("mode") == "managed"}


@dataclass
class DriftReport:
    """Everything ``tap drift`` found."""

    runs: list[RegionRun]
    drifts: list[Drift]

    @property
    def failed(self) -> bool:
        return any(run.failed for run in self.runs)

    def resources(self, region: str) -> set[str]:
        """The distinct drifted resources of ``region`` (deployed and cross-region)."""
        return {d.address for d in self.drifts if d.region == region}


def detect_drift(
    deployment: Deployment,
    out: Callable[[str], None] = print,
    accepted: Callable[[str, Drift], Drift | None] | None = None,
) -> DriftReport:
    """Refresh-only plans of every region in parallel, then the cross-region comparison of their states.

    ``accepted(region, drift)`` may narrow a deployed drift (the local emulator's own normalisations, see
    :mod:`analytics_platform.ops.emulator`); it returns None when nothing real is left.
    """
    runner = deployment.runner()
    plans: dict[str, dict[str, Any]] = {}

    def action(region: str, run: RegionRun) -> None:
        stack = deployment.stack_dir(region)
        log = f"drift-{region}"
        runner.init(stack, log, deployment.backend_file(region))
        runner.plan(stack, log, plan_file=DRIFT_PLAN, mode="refresh-only")
        plan = runner.show_plan(stack, DRIFT_PLAN)
        if not _state_resources(plan) and not plan.get("resource_drift"):
            raise RuntimeError("the state holds no resources: this region is not deployed (or its state is lost)")
        plans[region] = plan
        run.result = "refreshed"

    runs = run_regions(deployment, action, verb="refreshing", out=out)
    drifts: list[Drift] = []
    for region in deployment.regions:
        if region not in plans:
            continue
        for drift in deployed_drift(region, plans[region]):
            kept = accepted(region, drift) if accepted else drift
            if kept is not None:
                drifts.append(kept)
    states = {region: _state_resources(plan) for region, plan in plans.items()}
    az_counts = {deployment.config.region(region).az_count for region in states}
    drifts += cross_region_drift(states, az_counts_differ=len(az_counts) > 1)
    for run in runs:
        run.changed = len({d.address for d in drifts if d.region == run.region})
        if not run.failed:
            run.result = "drifted" if run.changed else "in sync"
    return DriftReport(runs, drifts)


def publish_drift(deployment: Deployment, report: DriftReport) -> list[str]:
    """Write each region's drifted-resource count to that region's CloudWatch (its drift alarm's metric); returns
    the regions that could not be written, each with why (the others are written all the same)."""
    failures = []
    for run in report.runs:
        if run.failed:
            continue
        stack = stack_id(run.region, deployment.config.environment_suffix)
        try:
            deployment.client("cloudwatch", run.region).put_metric_data(
                Namespace=DRIFT_NAMESPACE,
                MetricData=[{"MetricName": DRIFT_METRIC, "Dimensions": [{"Name": "Stack", "Value": stack}],
                             "Value": float(len(report.resources(run.region))), "Unit": "Count"}],
            )  # fmt: skip
        except Exception as error:  # one region's CloudWatch failing never stops the next region's
            failures.append(f"[{run.region}] ConfigurationDrift not published: {type(error).__name__}: {error}")
    return failures
