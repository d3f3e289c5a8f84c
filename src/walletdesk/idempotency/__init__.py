"""Idempotency-Key handling with Stripe's semantics, shared by every mutating endpoint."""
