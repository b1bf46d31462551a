"""Multi-region, data-residency-safe analytics platform as code.

Three parts, each importable alone:

* :mod:`analytics_platform.infra` - configuration model and the CDK for Terraform stacks (the only place
  that imports ``cdktf``),
* :mod:`analytics_platform.etl` - the Lambda ETL worker deployed into every region,
* :mod:`analytics_platform.local` - the embedded local AWS runtime used by ``tap local`` and ``tap demo``.
"""

__version__ = "0.1.0"
