"""Infrastructure: typed configuration and one CDK for Terraform stack per region.

Importing this package is cheap; the cdktf bindings are imported only by the modules that build stacks.
It sets defaults for the jsii Node.js runtime that cdktf starts on its first import (a variable the user
already set wins):

- the Node 20 end-of-life banner is silenced (Node 20 is what the machine image carries);
- ``NODE_OPTIONS=--max-semi-space-size=2``: a 2 MB young generation keeps the runtime's peak memory while it
  holds the AWS provider assembly about 40 MB lower at the same synth time (``benchmarks/synth_speed.py``).
"""

import os

JSII_RUNTIME_DEFAULTS = {
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "NODE_OPTIONS": "--max-semi-space-size=2",
}
for _name, _value in JSII_RUNTIME_DEFAULTS.items():
    os.environ.setdefault(_name, _value)
