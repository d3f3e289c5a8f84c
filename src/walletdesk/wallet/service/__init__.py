"""Wallet operations. Each takes a Session (or, when an outside system is called, the Database)
and never commits: the caller's unit of work does."""
