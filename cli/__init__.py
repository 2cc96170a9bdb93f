"""The `dispatch` command line."""
