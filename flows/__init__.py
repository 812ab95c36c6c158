"""Prefect flows and the ``ledgerflow`` CLI: they wire stages together and hold no business logic."""

import os

# No network beyond the systems a tenant names: Prefect's and dlt's analytics stay off.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
