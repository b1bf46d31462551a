"""CDKTF entry point (named in cdktf.json): synthesizes one stack per configured region.

Configuration: ``TAP_CONFIG`` (a JSON/TOML file, optional) and ``ENVIRONMENT_SUFFIX`` (default ``dev``).
"""

import os
import sys

from analytics_platform.cli import synth_for_cdktf

if __name__ == "__main__":
    sys.exit(synth_for_cdktf(os.environ.get("TAP_CONFIG")))
