"""The sink: every event on the topics into the record's PostgreSQL tables (docs/record.md)."""
