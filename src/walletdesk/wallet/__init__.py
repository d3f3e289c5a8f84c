"""Customers, wallets, merchants, cards and the money movements customers make."""
