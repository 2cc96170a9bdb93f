"""The reconciler: the promise that every received alarm is decided, checked while it runs."""
