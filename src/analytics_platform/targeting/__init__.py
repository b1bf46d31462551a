"""What a command acts on: one environment's regions, local or on AWS, with their clients (one resolver:
:func:`~analytics_platform.targeting.deployment.resolve_deployment`)."""
