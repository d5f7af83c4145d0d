"""Benchmarks: each script writes JSON to benchmarks/results/; run.py renders docs/benchmarks.md from them."""
