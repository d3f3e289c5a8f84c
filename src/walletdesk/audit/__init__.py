"""Append-only, hash-chained audit log of security-relevant and agent actions."""
