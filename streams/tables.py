"""The stages' Faust tables: JSON bytes by key, rebuilt from their changelog topics on start."""

from __future__ import annotations

from typing import Any

import faust


def bytes_table(app: faust.App, name: str) -> Any:
    """Declare a table of raw bytes (our own pydantic JSON, not Faust records).

    `use_partitioner=True`: a change goes to the changelog partition the default partitioner
    gives its key, not to the partition of the "current event". The agents work on batches
    (`streams.batching`), where there is no current event, and a default table refuses writes
    there. Every table is keyed exactly as the topic it is written from, and those topics use
    the same partitioner, so the changelog partition is still the source record's partition
    (checked in docs/benchmarks.md), and recovery after a rebalance stays correct.
    """
    return app.Table(
        name,
        default=None,
        key_type=bytes,
        value_type=bytes,
        use_partitioner=True,
    )
