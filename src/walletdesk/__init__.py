"""walletdesk: a self-hosted digital wallet with its own customer-service hotline."""

__version__ = "0.1.0"
