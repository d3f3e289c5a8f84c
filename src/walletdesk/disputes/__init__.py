"""Disputes: a customer contests a payment; the merchant answers; staff decide; the ledger pays."""
