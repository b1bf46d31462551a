"""The CDK for Terraform app: one :class:`RegionalStack` per configured region, synthesized once."""

from __future__ import annotations

from pathlib import Path

from cdktf import App

from analytics_platform.infra.config import PlatformConfig
from analytics_platform.infra.names import stack_id
from analytics_platform.infra.stack import RegionalStack
from analytics_platform.packaging import LambdaPackage, build_package


def build_app(
    config: PlatformConfig,
    *,
    outdir: str | Path = "cdktf.out",
    package: LambdaPackage | None = None,
    build_dir: Path | None = None,
) -> tuple[App, dict[str, RegionalStack]]:
    """Create the app and its stacks (keyed by region); the worker package is built if not given."""
    package = package or build_package(config.lambda_architecture, build_dir)
    app = App(outdir=str(outdir), skip_validation=False)
    stacks: dict[str, RegionalStack] = {}
    # The CDKTF iteration pattern of the spec: the same stack class, once per region.
    for region in config.regions:
        stacks[region.region] = RegionalStack(
            app,
            stack_id(region.region, config.environment_suffix),
            config=config,
            region=region,
            package=package,
        )
    return app, stacks


def synth(config: PlatformConfig, *, outdir: str | Path = "cdktf.out", build_dir: Path | None = None) -> Path:
    """Synthesize every stack into ``outdir`` (created with its parents); returns it."""
    Path(outdir).mkdir(parents=True, exist_ok=True)
    app, _ = build_app(config, outdir=outdir, build_dir=build_dir)
    app.synth()
    return Path(outdir)
