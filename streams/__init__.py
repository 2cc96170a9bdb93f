"""The Faust app and its agents."""
