"""The intake API: alarms in over HTTP, on Kafka before a receipt, idempotent by key."""

from consumers.intake.app import build_app
from consumers.intake.models import AlarmReceipt, AlarmRecord, AlarmRequest, ErrorBody

__all__ = ["AlarmReceipt", "AlarmRecord", "AlarmRequest", "ErrorBody", "build_app"]
