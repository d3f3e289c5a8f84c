"""Double-entry core: ledger accounts, immutable transfers and their entries, two-phase holds."""
