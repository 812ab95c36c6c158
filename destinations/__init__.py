"""Where journals go: export files (``exports``), accounting APIs (``apis``), how files travel
(``delivery``), and the export ledger that remembers what left (``tracking``)."""
