"""dlt sources, one module (or folder) per system. ``SOURCE_TYPES`` is the registry."""

import os

# No network beyond the systems a tenant names: dlt's anonymous telemetry stays off.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
# Staging picks the rows a run brought by their load id; dlt leaves it off Arrow tables by default.
os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")
