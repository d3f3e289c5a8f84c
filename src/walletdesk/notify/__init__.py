"""Notifications: an outbox written with the change, sent after commit by a worker."""
