"""Time `tap synth` for 3 and 12 regions (median of several runs), fast binding import vs plain import.

Targets (2 cores): 3 regions <= 6 s and <= 700 MB; each extra region adds <= 0.5 s.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import median_of

TWELVE = ["us-east-1", "eu-west-1", "ap-southeast-1", "us-east-2", "us-west-1", "us-west-2", "eu-central-1",
          "eu-west-2", "eu-west-3", "ap-northeast-1", "ap-southeast-2", "ca-central-1"]  # fmt: skip
TAP = str(Path(sys.executable).with_name("tap"))


def main(runs: int = 3) -> None:
    with tempfile.TemporaryDirectory() as work:
        twelve = Path(work) / "twelve.json"
        regions = [{"region": r, "vpc_cidr": f"10.{i}.0.0/16"} for i, r in enumerate(TWELVE)]
        # An account id, so synth needs no credentials (bucket names carry it).
        twelve.write_text(json.dumps({"regions": regions, "account_id": "123456789012"}))
        three = Path(work) / "three.json"
        three.write_text(json.dumps({"account_id": "123456789012"}))
        subprocess_env = dict(os.environ)
        # Build the worker package once so only synthesis is timed.
        median_of(1, [TAP, "synth", "--out", f"{work}/warm", "--config", str(three)])
        print(f"{'case':<34} {'wall s (median)':>16} {'peak RSS MB':>12}")
        results = {}
        for label, extra_env in (("fast import", {}), ("plain import", {"TAP_PLAIN_PROVIDER_IMPORT": "1"})):
            env = {**subprocess_env, **extra_env}
            for regions, args in ((3, ["--config", str(three)]), (12, ["--config", str(twelve)])):
                wall, rss = median_of(runs, [TAP, "synth", "--out", f"{work}/out-{regions}", *args], env)
                results[(label, regions)] = wall
                print(f"{label + f', {regions} regions':<34} {wall:>16.2f} {rss:>12.0f}")
        for label in ("fast import", "plain import"):
            per_region = (results[(label, 12)] - results[(label, 3)]) / 9
            print(f"{label}: {per_region:.2f} s per extra region")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
