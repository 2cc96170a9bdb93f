"""Tests of the intake API's parts that need no network."""
