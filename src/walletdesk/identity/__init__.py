"""Customers' credentials, sessions, devices, one-time codes, step-up and password reset."""
