"""Customer support: hours of operation (cases, contacts and the rest arrive here too)."""
