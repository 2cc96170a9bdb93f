"""Classify + route throughput: `python -m bench.pipeline` (see its __main__ for the method)."""
