"""Tests of the websocket push protocol, sessions and rate limits (no network)."""
