"""Day-to-day operations of a deployed platform: bootstrap, plan, deploy, destroy, drift and recovery."""
