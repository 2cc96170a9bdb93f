"""The intake API: alarms in over HTTP, on Kafka before a receipt, idempotent by key."""

from consumers.intake.app import AlarmReceipt, AlarmRecord, AlarmRequest, ErrorBody, build_app

__all__ = ["AlarmReceipt", "AlarmRecord", "AlarmRequest", "ErrorBody", "build_app"]
