"""Benchmarks: run as scripts; never part of the test suite."""
