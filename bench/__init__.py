"""Benchmarks of the gateway against same-run baselines (``python -m bench``; see README.md)."""
