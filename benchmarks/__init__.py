"""Benchmarks: scripts that print their figures (run them with make benchmark); importable so the e2e soak runs
the same code."""
