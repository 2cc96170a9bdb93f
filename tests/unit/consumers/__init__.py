"""Tests of the side services that need no network."""
