"""The websocket push gateway: jobs to units with guaranteed delivery, live boards to others."""

from consumers.push.gateway import OUTBOX_GROUP, PushGateway, PushTopics

__all__ = ["OUTBOX_GROUP", "PushGateway", "PushTopics"]
