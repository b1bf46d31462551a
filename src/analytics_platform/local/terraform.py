"""Run the real Terraform binary on synthesized stacks, offline, through a provider filesystem mirror."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analytics_platform.local.terraform_runs import Events, run_per_region, run_streaming

PROVIDER = "registry.terraform.io/hashicorp/aws"
PROVIDER_VERSION = "5.100.0"
MIRROR_VARIABLE = "TAP_PROVIDER_MIRROR"
#: Where machine images commonly keep a provider mirror; ``TAP_PROVIDER_MIRROR`` overrides these.
MIRROR_CANDIDATES = ("/opt/tf-plugins", "~/.terraform.d/plugins", "/usr/share/terraform/plugins")
#: ``terraform init`` runs one at a time (it is quick: the provider is a symlink into the mirror). There is
#: deliberately no shared ``plugin_cache_dir``: every init without a lock file re-links the cache entry, and a
#: parallel ``apply`` reading it in that instant fails with "there is no package ... cached in
#: .terraform/providers". Plans and applies, the slow part, run in parallel.
_INIT_LOCK = threading.Lock()


class TerraformError(RuntimeError):
    """Terraform is missing, the mirror is missing, or a Terraform command failed."""


def find_provider_mirror(environ: Mapping[str, str] | None = None) -> Path:
    """The folder holding ``registry.terraform.io/hashicorp/aws/5.100.0``; a clear error if absent."""
    env = os.environ if environ is None else environ
    configured = env.get(MIRROR_VARIABLE)
    candidates = [configured] if configured else list(MIRROR_CANDIDATES)
    for candidate in candidates:
        root = Path(os.path.expanduser(candidate))
        if (root / PROVIDER / PROVIDER_VERSION).is_dir():
            return root
    where = f"{MIRROR_VARIABLE}={configured}" if configured else ", ".join(MIRROR_CANDIDATES)
    raise TerraformError(
        f"no filesystem mirror of {PROVIDER} {PROVIDER_VERSION} found (looked in {where}). "
        f"Set {MIRROR_VARIABLE} to a folder containing {PROVIDER}/{PROVIDER_VERSION}/<os_arch>/."
    )


def write_cli_config(path: Path, mirror: Path) -> Path:
    """A Terraform CLI config that installs the AWS provider only from the mirror (an unpacked mirror is linked,
    not copied, into each stack's ``.terraform``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["{PROVIDER}"]\n  }}\n'
        f'  direct {{\n    exclude = ["{PROVIDER}"]\n  }}\n'
        "}\n"
    )
    return path


@dataclass(frozen=True)
class TerraformRunner:
    """Runs Terraform commands in stack folders with the offline CLI config; logs go to ``log_dir``."""

    cli_config: Path
    log_dir: Path
    extra_env: Mapping[str, str] | None = None

    @classmethod
    def create(cls, work_dir: Path, extra_env: Mapping[str, str] | None = None) -> TerraformRunner:
        """Check for the binary and the mirror, and write the CLI config under ``work_dir``."""
        if shutil.which("terraform") is None:
            raise TerraformError("the terraform binary is not on PATH (Terraform >= 1.5 is required)")
        mirror = find_provider_mirror()
        config = write_cli_config(work_dir / "terraformrc", mirror)
        (work_dir / "logs").mkdir(parents=True, exist_ok=True)
        return cls(config, work_dir / "logs", extra_env)

    def environment(self) -> dict[str, str]:
        """The environment of every Terraform process."""
        env = dict(os.environ)
        env.update(
            {
                "TF_CLI_CONFIG_FILE": str(self.cli_config),
                "TF_IN_AUTOMATION": "1",
                "TF_INPUT": "0",
                "CHECKPOINT_DISABLE": "1",
            }
        )
        env.update(self.extra_env or {})
        return env

    def run(
        self, stack_dir: Path, *args: str, log_name: str, ok_codes: tuple[int, ...] = (0,),
        events: Events | None = None,
    ) -> int:  # fmt: skip
        """Run ``terraform <args>`` in ``stack_dir``; raises with the log's tail on an exit code not in ``ok_codes``
        (``plan -detailed-exitcode`` answers 2 for "changes"); returns the exit code.

        ``events``: Terraform runs with ``-json`` and each machine-readable message is handed to it as it comes
        (progress); the log still gets the human text of every message.
        """
        log = self.log_dir / f"{log_name}.log"
        with log.open("a") as handle:
            handle.write(f"\n$ terraform {' '.join(args)}\n")
            handle.flush()
            started = time.monotonic()
            if events is None:
                code = subprocess.run(
                    ["terraform", *args], cwd=stack_dir, env=self.environment(), stdout=handle,
                    stderr=subprocess.STDOUT, check=False,
                ).returncode  # fmt: skip
            else:
                code = run_streaming(["terraform", args[0], "-json", *args[1:]], stack_dir, self.environment(),
                                     handle, events)  # fmt: skip
            # where a region's time goes, command by command, next to the provider's "complete after" lines
            handle.write(f"$ terraform {args[0]}: exit {code} after {time.monotonic() - started:.1f} s\n")
        if code not in ok_codes:
            tail = "\n".join(log.read_text().splitlines()[-25:])
            raise TerraformError(f"terraform {args[0]} failed in {stack_dir.name} (log: {log}):\n{tail}")
        return code

    def init(self, stack_dir: Path, log_name: str, backend_config: Path | None = None) -> None:
        """``terraform init`` from the mirror (one at a time, see ``_INIT_LOCK``); ``backend_config`` is a partial
        backend configuration file (the local endpoint's S3 backend settings)."""
        extra = [f"-backend-config={backend_config}", "-reconfigure"] if backend_config else []
        with _INIT_LOCK:
            self.run(stack_dir, "init", "-no-color", "-input=false", *extra, log_name=log_name)

    def plan(
        self, stack_dir: Path, log_name: str, *, plan_file: str, mode: str = "normal", events: Events | None = None
    ) -> bool:
        """``plan -detailed-exitcode -out=plan_file`` (``mode``: normal, destroy or refresh-only); True if the plan
        holds changes."""
        flags = {"normal": [], "destroy": ["-destroy"], "refresh-only": ["-refresh-only"]}[mode]
        code = self.run(
            stack_dir, "plan", "-no-color", "-input=false", "-lock-timeout=120s", "-detailed-exitcode", *flags,
            f"-out={plan_file}",
            log_name=log_name, ok_codes=(0, 2), events=events,
        )  # fmt: skip
        return code == 2

    def show_plan(self, stack_dir: Path, plan_file: str) -> dict[str, Any]:
        """``terraform show -json plan_file``."""
        result = subprocess.run(
            ["terraform", "show", "-json", plan_file], cwd=stack_dir, env=self.environment(), capture_output=True,
            text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise TerraformError(f"terraform show failed in {stack_dir.name}: {result.stderr.strip()[-2000:]}")
        document: dict[str, Any] = json.loads(result.stdout)
        return document

    def apply_plan(self, stack_dir: Path, log_name: str, plan_file: str, events: Events | None = None) -> None:
        """``apply plan_file`` (a saved plan applies exactly what was shown, nothing more)."""
        self.run(stack_dir, "apply", "-no-color", "-input=false", "-lock-timeout=120s", plan_file, log_name=log_name,
                 events=events)  # fmt: skip

    def apply(self, stack_dir: Path, log_name: str, events: Events | None = None) -> None:
        """``init`` then ``apply -auto-approve``."""
        self.init(stack_dir, log_name)
        self.run(stack_dir, "apply", "-no-color", "-input=false", "-auto-approve", log_name=log_name, events=events)

    def settle(self, stack_dir: Path, log_name: str) -> None:
        """``apply -refresh-only``: record what the provider reads back right after an apply (a bucket's versioning
        set by its companion resource, values the service normalised), so ``tap drift`` compares against that."""
        self.run(
            stack_dir, "apply", "-no-color", "-input=false", "-lock-timeout=120s", "-refresh-only", "-auto-approve",
            log_name=log_name,
        )  # fmt: skip

    def destroy(self, stack_dir: Path, log_name: str, events: Events | None = None) -> None:
        """``destroy -auto-approve``."""
        self.init(stack_dir, log_name)
        self.run(stack_dir, "destroy", "-no-color", "-input=false", "-auto-approve", log_name=log_name, events=events)

    def outputs(self, stack_dir: Path) -> dict[str, Any]:
        """``terraform output -json`` of an applied stack: ``{name: value}``."""
        result = subprocess.run(
            ["terraform", "output", "-json"], cwd=stack_dir, env=self.environment(), capture_output=True,
            text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise TerraformError(f"terraform output failed in {stack_dir.name}: {result.stderr.strip()[-2000:]}")
        return {name: value["value"] for name, value in json.loads(result.stdout).items()}

    def validate(self, stack_dir: Path, log_name: str) -> None:
        """``init -backend=false`` then ``validate``."""
        with _INIT_LOCK:
            self.run(stack_dir, "init", "-no-color", "-input=false", "-backend=false", log_name=log_name)
        self.run(stack_dir, "validate", "-no-color", log_name=log_name)

    def validation_errors(self, stack_dir: Path, log_name: str) -> list[str]:
        """``init -backend=false`` then ``validate -json``: each error the provider's schema finds (values AWS
        refuses, such as an unknown log retention, unknown or missing attributes), as ``summary: detail (where)``."""
        with _INIT_LOCK:
            self.run(stack_dir, "init", "-no-color", "-input=false", "-backend=false", log_name=log_name)
        result = subprocess.run(
            ["terraform", "validate", "-json", "-no-color"], cwd=stack_dir, env=self.environment(),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        try:
            report = json.loads(result.stdout)
        except json.JSONDecodeError:
            return [
                f"terraform validate did not answer JSON (exit {result.returncode}): {result.stderr.strip()[-500:]}"
            ]
        errors = []
        for diagnostic in report.get("diagnostics", []):
            if diagnostic.get("severity") != "error":
                continue
            where = diagnostic.get("address") or diagnostic.get("range", {}).get("filename", "")
            detail = " ".join(str(diagnostic.get("detail", "")).split())
            message = f"{diagnostic.get('summary')}: {detail}" if detail else str(diagnostic.get("summary"))
            errors.append(message + (f" ({where})" if where else ""))
        if result.returncode != 0 and not errors:
            errors.append(f"terraform validate failed (exit {result.returncode}): {result.stderr.strip()[-500:]}")
        return errors


def validate_stacks(stacks_root: Path, names: Sequence[str], work_dir: Path) -> list[str]:
    """``terraform validate`` of every stack under ``stacks_root`` with the offline provider, on copies in
    ``work_dir`` (the synth output stays free of ``.terraform`` folders); one finding per error."""
    runner = TerraformRunner.create(work_dir)
    findings: dict[str, list[str]] = {}

    def one(name: str) -> None:
        source, copy = stacks_root / name, work_dir / "stacks" / name
        if not (source / "cdk.tf.json").is_file():
            findings[name] = [f"no synthesized stack at {source} (synthesize first, or drop --no-synth)"]
            return
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
        try:
            findings[name] = runner.validation_errors(copy, log_name=f"validate-{name}")
        except TerraformError as error:  # init refused the stack: that stack's finding, the others still run
            findings[name] = [str(error).splitlines()[0]]

    run_per_region(one, names, progress=lambda _: None, verb="validating")
    return [f"{name}: terraform validate: {error}" for name in names for error in findings.get(name, [])]
