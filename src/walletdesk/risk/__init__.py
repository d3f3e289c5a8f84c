"""Anomaly monitoring: pure rules, an evaluator, decisions and alerts."""
