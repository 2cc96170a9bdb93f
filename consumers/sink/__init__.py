"""The sink: every event on the topics into the record's PostgreSQL tables (docs/record.md)."""

SINK_GROUP = "alarm-dispatch-sink"
"""The sink's consumer group by default (the `sink_group` setting): its committed offsets
say how far the record is written."""
