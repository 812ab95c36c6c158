"""Reconciliation: match bank lines with open items. Pure functions, no IO."""
