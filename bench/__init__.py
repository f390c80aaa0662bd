"""Benchmarks, run from the repository root as modules: python -m bench.load_test ..."""
