"""Tests of principals, roles and the role matrix."""
