"""Canonicalise a PMS's raw charges and payments into ``sales_line`` and ``payment``.

Input: the *current* version of each record (several rows for one id only when
the PMS delivered conflicting versions with the same timestamp). Output: the
canonical rows, the ids whose current version is voided, and rejects that say
which record, which column, which value and why. Nothing is coerced: a value that
is not exactly right is rejected with the record kept whole in ``payload``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import time

import polars as pl

from schemas.money import MONEY_DTYPE, QUANTITY_DTYPE, RATE_DTYPE
from schemas.tables import Payment, SalesLine, polars_schema
from schemas.validate import validate_rows
from transforms.periods import business_date_expr

REJECT_SCHEMA = {
    "source": pl.String,
    "table_name": pl.String,
    "record_id": pl.String,
    "record_version": pl.String,
    "business_date": pl.Date,
    "column_name": pl.String,
    "value": pl.String,
    "reason": pl.String,
    "payload": pl.String,
}

RAW_COLUMNS = {
    "charges": {"id": pl.String, "folio_id": pl.String, "outlet": pl.String, "category": pl.String,
                "description": pl.String, "quantity": QUANTITY_DTYPE, "amount": MONEY_DTYPE,
                "vat_rate": RATE_DTYPE, "currency": pl.String, "status": pl.String},
    "payments": {"id": pl.String, "folio_id": pl.String, "kind": pl.String, "method": pl.String,
                 "amount": MONEY_DTYPE, "currency": pl.String, "company_id": pl.String,
                 "company_name": pl.String, "reference": pl.String, "status": pl.String},
}
_ALWAYS = {"posted_at": pl.Datetime("us", "UTC"), "updated_at": pl.Datetime("us", "UTC"),
           "lf_invalid": pl.String, "lf_extra": pl.String, "lf_record_hash": pl.String}
REQUIRED = {
    "charges": ("posted_at", "updated_at", "category", "amount", "vat_rate", "currency", "status"),
    "payments": ("posted_at", "updated_at", "kind", "method", "amount", "currency", "status"),
}
STATUSES = ("posted", "void")
PAYMENT_KINDS = ("payment", "deposit")


@dataclass(frozen=True)
class Staged:
    sales_lines: pl.DataFrame
    payments: pl.DataFrame
    voided: pl.DataFrame  # table_name, record_id: current version says "void"
    rejects: pl.DataFrame


def conform_raw(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """The raw columns we read, typed; columns the source never sent come back as nulls."""
    wanted = {**RAW_COLUMNS[table], **_ALWAYS}
    return frame.select(
        [(pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
         for name, dtype in wanted.items()]
    )


def _payload(frame: pl.DataFrame) -> pl.Expr:
    """The whole record as JSON text, original bad values included (they sit in lf_invalid)."""
    return pl.struct(frame.columns).struct.json_encode()


def _field_problems(frame: pl.DataFrame, table: str, currency: str) -> pl.DataFrame:
    """One row per (record, problem): invalid values, missing values, values out of their domain."""
    rules: list[tuple[pl.Expr, str, pl.Expr, pl.Expr]] = []
    for name in REQUIRED[table]:
        flagged = pl.col("lf_invalid").str.contains(f'"{name}":', literal=True).fill_null(False)
        rules.append((pl.col(name).is_null() & ~flagged, name, pl.lit(None, pl.String), pl.lit("is missing")))
    rules.append((pl.col("currency").is_not_null() & (pl.col("currency") != currency), "currency",
                  pl.col("currency"), pl.lit(f"is not the tenant's currency {currency}")))
    rules.append((pl.col("status").is_not_null() & ~pl.col("status").is_in(STATUSES), "status",
                  pl.col("status"), pl.lit(f"is not one of {', '.join(STATUSES)}")))
    if table == "payments":
        rules.append((pl.col("kind").is_not_null() & ~pl.col("kind").is_in(PAYMENT_KINDS), "kind",
                      pl.col("kind"), pl.lit(f"is not one of {', '.join(PAYMENT_KINDS)}")))
    else:
        rules.append((pl.col("vat_rate").is_not_null() & (pl.col("vat_rate") > 100), "vat_rate",
                      pl.col("vat_rate").cast(pl.String), pl.lit("is above 100 %")))
    found = [
        frame.filter(condition).select(
            "__row", pl.lit(column).alias("column_name"), value.cast(pl.String).alias("value"),
            reason.alias("reason"))
        for condition, column, value, reason in rules
    ]
    flagged_rows = frame.filter(pl.col("lf_invalid").is_not_null()).select("__row", "lf_invalid")
    if flagged_rows.height:  # the extractor's findings: value as sent, and why it was refused
        rows = []
        for row, text in flagged_rows.iter_rows():
            for column, problem in sorted(json.loads(text).items()):
                rows.append({"__row": row, "column_name": column, "value": problem["value"],
                             "reason": problem["reason"]})
        found.append(pl.DataFrame(rows, schema={"__row": pl.UInt32, "column_name": pl.String,
                                                "value": pl.String, "reason": pl.String}))
    conflicts = (
        frame.filter(pl.len().over("id") > 1)
        .select("__row", pl.lit("id").alias("column_name"), pl.col("id").alias("value"),
                pl.format("was delivered {} times with different content for the same version",
                          pl.len().over("id")).alias("reason"))
    )
    found.append(conflicts)
    return pl.concat(found, how="vertical_relaxed").unique(maintain_order=True)


def _canonical(frame: pl.DataFrame, source: str, key: str, columns: list) -> pl.DataFrame:
    """Canonical rows: the key and provenance columns every table has, then the table's own."""
    return frame.select(
        "__row",
        pl.format("{}/{}", pl.lit(source), pl.col("id")).alias(key),
        pl.lit(source).alias("source"),
        pl.col("id").alias("source_id"),
        pl.col("updated_at").alias("source_version"),
        "business_date",
        "posted_at",
        *columns,
    )


_CANONICAL_COLUMNS = {
    "charges": ("line_id", ["category", "description", "folio_id", "outlet",
                            pl.col("quantity").fill_null(1).cast(QUANTITY_DTYPE), "amount", "vat_rate", "currency"]),
    "payments": ("payment_id", ["kind", "method", "amount", "currency", "folio_id",
                                pl.col("company_id").alias("partner_id"), pl.col("company_name").alias("partner_name"),
                                "reference"]),
}


def stage_table(raw: pl.DataFrame, table: str, *, source: str, currency: str, timezone: str,
                cutoff: time) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(canonical rows, voided ids, rejects) for one raw table of current versions."""
    frame = conform_raw(raw, table).with_row_index("__row").with_columns(
        business_date_expr(pl.col("posted_at"), timezone, cutoff).alias("business_date")
    )
    frame = frame.with_columns(_payload(frame.drop("__row", "business_date")).alias("__payload"))
    problems = _field_problems(frame, table, currency)
    bad_rows = problems.get_column("__row").unique().implode()
    good = frame.filter(~pl.col("__row").is_in(bad_rows))
    voided = good.filter(pl.col("status") == "void").select(
        pl.lit(table).alias("table_name"), pl.col("id").alias("record_id"))
    posted = good.filter(pl.col("status") == "posted")

    model = SalesLine if table == "charges" else Payment
    key, columns = _CANONICAL_COLUMNS[table]
    canonical = _canonical(posted, source, key, columns)
    checked = validate_rows(model, canonical.drop("__row"))
    if not checked.ok:
        rows = canonical.get_column("__row")
        problems = pl.concat([problems, checked.failures.select(
            pl.col("row").map_elements(lambda i: rows[i], return_dtype=pl.UInt32).alias("__row"),
            pl.col("column").alias("column_name"), "value", "reason")], how="vertical_relaxed")
    rejects = (
        problems.join(frame, on="__row", how="left")
        .select(
            pl.lit(source).alias("source"),
            pl.lit(table).alias("table_name"),
            pl.col("id").alias("record_id"),
            pl.col("updated_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ").alias("record_version"),
            "business_date",
            "column_name",
            "value",
            "reason",
            pl.col("__payload").alias("payload"),
        )
        .sort("record_id", "column_name", nulls_last=True)
    )
    return checked.valid.cast(polars_schema(model)), voided, rejects.cast(REJECT_SCHEMA)


def stage_pms(raw_charges: pl.DataFrame, raw_payments: pl.DataFrame, *, source: str, currency: str,
              timezone: str, cutoff: time) -> Staged:
    sales, voided_charges, charge_rejects = stage_table(raw_charges, "charges", source=source,
                                                        currency=currency, timezone=timezone, cutoff=cutoff)
    payments, voided_payments, payment_rejects = stage_table(raw_payments, "payments", source=source,
                                                             currency=currency, timezone=timezone, cutoff=cutoff)
    return Staged(sales, payments, pl.concat([voided_charges, voided_payments]),
                  pl.concat([charge_rejects, payment_rejects]))
