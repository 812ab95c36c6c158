"""The tenant's DuckDB file: connections, tables, and moving frames in and out.

One file per tenant; DuckDB allows one writer per file, so flows that write it
share the Prefect concurrency tag ``tenant:<id>``. Every connection works in UTC.
Canonical tables are created from the Pandera models in ``schemas.tables``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandera.polars as pa
import polars as pl

from schemas.tables import CANONICAL_MODELS, polars_schema, table_name


def sql_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Decimal):
        return f"DECIMAL({dtype.precision},{dtype.scale})"
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone not in ("UTC", None):
            raise ValueError(f"timestamps are stored in UTC, not {dtype.time_zone}")
        return "TIMESTAMPTZ"
    simple = {pl.String: "VARCHAR", pl.Date: "DATE", pl.Int64: "BIGINT", pl.Int32: "INTEGER",
              pl.Boolean: "BOOLEAN", pl.Float64: "DOUBLE"}  # DOUBLE: match confidence only, not money
    for polars_type, name in simple.items():
        if dtype == polars_type:
            return name
    raise ValueError(f"no DuckDB type for {dtype}")


def create_table_sql(model: type[pa.DataFrameModel]) -> str:
    columns = model.to_schema().columns
    parts = []
    for name, column in columns.items():
        null = "" if column.nullable else " NOT NULL"
        parts.append(f"{name} {sql_type(column.dtype.type)}{null}")
    return f"CREATE TABLE IF NOT EXISTS {table_name(model)} ({', '.join(parts)})"


def run(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    """Execute one statement to completion (DuckDB 2 refuses new work while a result is pending)."""
    return con.execute(sql, params or []).fetchall()


class SchemaDrift(RuntimeError):
    """The tenant's DuckDB file was made by a ledgerflow whose tables differ in a way we cannot mend."""


def schema_fingerprint() -> str:
    """Changes whenever a canonical table's DDL changes."""
    import hashlib

    return hashlib.sha256("\n".join(create_table_sql(m) for m in CANONICAL_MODELS).encode()).hexdigest()[:12]


@functools.cache
def _canonical_columns() -> dict[str, dict[str, tuple[bool, str]]]:
    """table -> column -> (nullable, SQL type), from the models once per process: every connection
    checks the file against it, and building Pandera schemas is most of that check's cost."""
    return {table_name(model): {column: (spec.nullable, sql_type(spec.dtype.type))
                                for column, spec in model.to_schema().columns.items()}
            for model in CANONICAL_MODELS}


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables; add columns that newer models have and that may be null; refuse the rest."""
    existing: dict[str, set[str]] = {}
    for table, column in run(con, "SELECT table_name, column_name FROM information_schema.columns "
                                  "WHERE table_schema = 'main'"):
        existing.setdefault(table, set()).add(column)
    for model in CANONICAL_MODELS:
        name = table_name(model)
        if name not in existing:
            run(con, create_table_sql(model))
            continue
        for column, (nullable, column_type) in _canonical_columns()[name].items():
            if column in existing[name]:
                continue
            if not nullable:
                database = run(con, "SELECT path FROM duckdb_databases() WHERE database_name = current_database()")
                raise SchemaDrift(f"{database[0][0] if database else 'database'}: table {name} has no column "
                                  f"{column}, which this version of ledgerflow requires; it was created by an "
                                  "older version (rebuild it with a backfill into a new data_dir)")
            run(con, f"ALTER TABLE {name} ADD COLUMN {column} {column_type}")


def connect(path: Path | str) -> duckdb.DuckDBPyConnection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        run(con, "SET TimeZone = 'UTC'")
        ensure_schema(con)
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def opened(path: Path | str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection that is closed afterwards (dlt opens the same file between our steps)."""
    con = connect(path)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    run(con, "BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        run(con, "ROLLBACK")
        raise
    run(con, "COMMIT")


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list | dict | None = None) -> pl.DataFrame:
    frame = pl.from_arrow(con.sql(sql, params=params or []).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def read_model(con: duckdb.DuckDBPyConnection, model: type[pa.DataFrameModel], where: str = "TRUE",
               params: list | None = None, order_by: str | None = None) -> pl.DataFrame:
    """Rows of a canonical table with the model's exact column types."""
    schema = polars_schema(model)
    order = f" ORDER BY {order_by}" if order_by else ""
    frame = query(con, f"SELECT {', '.join(schema)} FROM {table_name(model)} WHERE {where}{order}", params)
    return frame.cast(schema)  # type: ignore[arg-type]


def insert(con: duckdb.DuckDBPyConnection, model: type[pa.DataFrameModel], frame: pl.DataFrame) -> int:
    if frame.is_empty():
        return 0
    schema = polars_schema(model)
    arrow = frame.select(list(schema)).cast(schema).to_arrow()  # type: ignore[arg-type]
    con.register("__incoming", arrow)
    try:
        run(con, f"INSERT INTO {table_name(model)} BY NAME SELECT * FROM __incoming")
    finally:
        con.unregister("__incoming")
    return frame.height


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    rows = run(con, "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
               [schema, table])
    return bool(rows[0][0])
