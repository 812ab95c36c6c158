"""Imported journal entries (an accounting-entries API's) -> the tenant's own journal entries.

Each remote entry the sender gave us becomes one journal entry of ours, taken as it is after
two changes: its accounts are mapped to our chart (``accounts``: theirs -> ours, default the
same number) and it gets our id, derived from (tenant, source, remote entry id, version)
(DESIGN invariant 3), so a rerun finds the same ids.

An entry is refused whole, naming the entry, the field and the value, when it does not
balance per currency, names an account our chart does not have, lacks a date, or carries a
value the extractor could not read exactly. Nothing of a refused entry is written.

Versions follow DESIGN invariant 4 as ``transforms.versions`` does for a day's journal, with the
remote entry in place of the business day: never exported -> a draft replaced in place; exported
and unchanged -> nothing; exported and changed at the sender -> a reversal of what we exported
plus the next version as a correction. Pure: no IO.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

import polars as pl

from schemas.money import MONEY_DTYPE
from schemas.tables import CURRENCIES, JournalLine, polars_schema
from transforms.stage_pms import REJECT_SCHEMA
from transforms.versions import ENTRY_SCHEMA, content_hash, content_hashes, entry_date_for, reversal_id

TABLE = "entries"
RAW_ENTRY_SCHEMA = {"entry_id": pl.String, "business_date": pl.Date, "entry_date": pl.Date,
                    "line_count": pl.Int64, "lf_invalid": pl.String, "lf_record_hash": pl.String}
RAW_LINE_SCHEMA = {"entry_id": pl.String, "line_no": pl.Int64, "journal_code": pl.String, "account": pl.String,
                   "partner_id": pl.String, "partner_name": pl.String, "description": pl.String,
                   "debit": MONEY_DTYPE, "credit": MONEY_DTYPE, "currency": pl.String, "vat_code": pl.String,
                   "document_ref": pl.String, "lf_invalid": pl.String}
STORED_SCHEMA = {**ENTRY_SCHEMA, "remote_id": pl.String, "exported": pl.Boolean}
_PROBLEM = {"entry_id": pl.String, "column_name": pl.String, "value": pl.String, "reason": pl.String}
_LINE_COLUMNS = list(polars_schema(JournalLine))


def our_entry_id(tenant: str, source: str, remote_id: str, version: int) -> str:
    return f"{tenant}-{source}-{remote_id}-v{version}"


def remote_id_pattern(tenant: str, source: str) -> tuple[str, str]:
    """(prefix, suffix regex) of our ids: what is between them is the remote entry id."""
    return f"{tenant}-{source}-", r"-v[0-9]+(-R)?$"


@dataclass(frozen=True)
class ImportPlan:
    entries: pl.DataFrame  # ENTRY_SCHEMA: to insert
    lines: pl.DataFrame  # JournalLine columns: to insert
    delete_entry_ids: list[str]  # drafts superseded
    reversed: list[str]  # exported entries of ours this plan reverses
    accepted: int  # remote entries that passed every check
    rejects: pl.DataFrame  # REJECT_SCHEMA


def conform(frame: pl.DataFrame, schema: dict) -> pl.DataFrame:
    """The raw columns we read, typed; a column the sender never sent comes back as nulls."""
    if frame.width == 0:
        return pl.DataFrame(schema=schema)
    return frame.select([(pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
                         for name, dtype in schema.items()])


def _flagged(frame: pl.DataFrame, prefix: pl.Expr | None) -> pl.DataFrame:
    """The extractor's findings (``lf_invalid``), one problem per row, with the value as sent."""
    rows = []
    keys = frame.select("entry_id", prefix.alias("where") if prefix is not None else pl.lit("").alias("where"),
                        "lf_invalid").filter(pl.col("lf_invalid").is_not_null())
    for entry_id, where, text in keys.iter_rows():
        for column, problem in sorted(json.loads(text).items()):
            rows.append({"entry_id": entry_id, "column_name": f"{where}{column}", "value": problem["value"],
                         "reason": problem["reason"]})
    return pl.DataFrame(rows, schema=_PROBLEM)


def _problems(entries: pl.DataFrame, lines: pl.DataFrame, *, chart: dict[str, str], accounts: dict[str, str],
              journal_code: str | None, tenant: str, source: str, currency: str) -> pl.DataFrame:
    """Every reason to refuse an entry, one row each."""
    at = pl.format("lines[{}].", pl.col("line_no"))
    found = [_flagged(entries, None), _flagged(lines, at)]

    def rule(frame: pl.DataFrame, condition: pl.Expr, column: pl.Expr | str, value: pl.Expr, reason: pl.Expr | str):
        found.append(frame.filter(condition).select(
            "entry_id", (pl.lit(column) if isinstance(column, str) else column).alias("column_name"),
            value.cast(pl.String).alias("value"),
            (pl.lit(reason) if isinstance(reason, str) else reason).alias("reason")))

    def not_flagged(name: str) -> pl.Expr:  # the extractor already said why it is null
        return ~pl.col("lf_invalid").fill_null("").str.contains(f'"{name}":', literal=True)

    for name in ("business_date", "entry_date"):
        rule(entries, pl.col(name).is_null() & not_flagged(name), name, pl.lit(None), "is missing")
    counted = entries.join(lines.group_by("entry_id").agg(pl.len().cast(pl.Int64).alias("delivered")),
                           on="entry_id", how="left").with_columns(pl.col("delivered").fill_null(0))
    rule(counted, pl.col("delivered") == 0, "lines", pl.lit(None), "the entry has no lines")
    rule(counted, pl.col("line_count").is_not_null() & (pl.col("delivered") > 0)
         & (pl.col("line_count") != pl.col("delivered")), "line_count", pl.col("line_count"),
         pl.format("says {} lines but {} were delivered", pl.col("line_count"), pl.col("delivered")))

    required = ["account", "currency", "debit", "credit"] + ([] if journal_code else ["journal_code"])
    for name in required:
        rule(lines, pl.col(name).is_null() & not_flagged(name), pl.format("lines[{}].{}", pl.col("line_no"),
             pl.lit(name)), pl.lit(None), "is missing")
    rule(lines, pl.col("line_no").is_duplicated().over("entry_id"), pl.format("lines[{}].line_no", pl.col("line_no")),
         pl.col("line_no"), "appears more than once in the entry")
    ours = pl.col("account").replace(accounts)
    rule(lines, pl.col("account").is_not_null() & ~ours.is_in(list(chart)),
         pl.format("lines[{}].account", pl.col("line_no")), pl.col("account"),
         pl.format("account {} is not in the chart of tenant {}{}: add it to [[accounts]] or map it in "
                   "sources.{}.accounts", ours, pl.lit(tenant),
                   pl.when(ours != pl.col("account")).then(pl.format(" (mapped from {})", pl.col("account")))
                   .otherwise(pl.lit("")), pl.lit(source)))
    rule(lines, pl.col("currency").is_not_null() & ~pl.col("currency").is_in(CURRENCIES),
         pl.format("lines[{}].currency", pl.col("line_no")), pl.col("currency"), "is not an ISO 4217 currency")
    # Our books are kept in one currency (trial balance, exports); converting is the sender's call.
    rule(lines, pl.col("currency").is_in(CURRENCIES) & (pl.col("currency") != currency),
         pl.format("lines[{}].currency", pl.col("line_no")), pl.col("currency"),
         f"is not the currency of tenant {tenant}'s books ({currency}): the sender must convert it")
    one_side = (pl.col("debit") > 0) ^ (pl.col("credit") > 0)
    rule(lines, pl.col("debit").is_not_null() & pl.col("credit").is_not_null()
         & (~one_side | (pl.col("debit") < 0) | (pl.col("credit") < 0)),
         pl.format("lines[{}]", pl.col("line_no")), pl.format("{}/{}", pl.col("debit"), pl.col("credit")),
         pl.format("needs exactly one of debit and credit above zero and neither below (debit {}, credit {})",
                   pl.col("debit"), pl.col("credit")))
    totals = lines.filter(pl.col("currency").is_not_null()).group_by("entry_id", "currency").agg(
        pl.col("debit").sum().alias("debit"), pl.col("credit").sum().alias("credit"),
        (pl.col("debit").is_null().any() | pl.col("credit").is_null().any()).alias("unknown"))
    rule(totals, ~pl.col("unknown") & (pl.col("debit") != pl.col("credit")), "lines", pl.col("currency"),
         pl.format("the entry does not balance in {}: debit {}, credit {} (difference {})", pl.col("currency"),
                   pl.col("debit"), pl.col("credit"), pl.col("debit") - pl.col("credit")))
    return pl.concat(found, how="vertical_relaxed").unique(maintain_order=True)


def check_entries(entries: pl.DataFrame, lines: pl.DataFrame, *, chart: dict[str, str], accounts: dict[str, str],
                  journal_code: str | None, tenant: str, source: str, currency: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(entries that pass every check, rejects of the others) -- the current version of each remote entry."""
    entries, lines = conform(entries, RAW_ENTRY_SCHEMA), conform(lines, RAW_LINE_SCHEMA)
    problems = _problems(entries, lines, chart=chart, accounts=accounts, journal_code=journal_code, tenant=tenant,
                         source=source, currency=currency)
    refused = entries.join(problems, on="entry_id", how="inner", maintain_order="right")
    rejects = refused.select(
        pl.lit(source).alias("source"), pl.lit(TABLE).alias("table_name"), pl.col("entry_id").alias("record_id"),
        pl.col("lf_record_hash").alias("record_version"), "business_date", "column_name", "value",
        pl.format("entry {}: {}", pl.col("entry_id"), pl.col("reason")).alias("reason"),
        pl.lit(None, pl.String).alias("payload"),
    ).cast(REJECT_SCHEMA).sort("record_id", "column_name", maintain_order=True)
    return entries.join(problems, on="entry_id", how="anti"), rejects


def built_lines(entries: pl.DataFrame, lines: pl.DataFrame, *, chart: dict[str, str], accounts: dict[str, str],
                journal_code: str | None) -> pl.DataFrame:
    """Our lines of accepted entries (keyed by ``remote_id``): accounts mapped, named as our chart names them."""
    ours = pl.col("account").replace(accounts)
    return conform(lines, RAW_LINE_SCHEMA).join(entries.select("entry_id"), on="entry_id", how="semi").select(
        pl.col("entry_id").alias("remote_id"), "line_no",
        (pl.lit(journal_code) if journal_code else pl.col("journal_code")).alias("journal_code"),
        ours.alias("account"), ours.replace_strict(chart, default=None).alias("account_name"),
        "partner_id", "partner_name", pl.col("description").fill_null(pl.col("entry_id")).alias("description"),
        "debit", "credit", "currency", "vat_code",
        pl.col("document_ref").fill_null(pl.col("entry_id")).alias("document_ref"),
    ).sort("remote_id", "line_no")


def _reversal(lines: pl.DataFrame, reversed_id: str, new_id: str, dated: date) -> pl.DataFrame:
    return lines.with_columns(
        pl.lit(new_id).alias("entry_id"), pl.lit(dated).alias("entry_date"),
        pl.col("credit").alias("debit"), pl.col("debit").alias("credit"),
        pl.format("Reversal of {}: {}", pl.lit(reversed_id), pl.col("description")).alias("description"),
    ).select(_LINE_COLUMNS)


def plan_imports(*, tenant: str, source: str, entries: pl.DataFrame, lines: pl.DataFrame,
                 stored_entries: pl.DataFrame, stored_lines: pl.DataFrame, closed_through: date | None,
                 rejects: pl.DataFrame) -> ImportPlan:
    """What to write so that our entries of these remote entries say what the sender says now.

    ``entries``: accepted remote headers; ``lines``: their ``built_lines``; ``stored_entries``:
    STORED_SCHEMA for the same remote ids; ``stored_lines``: JournalLine rows of the exported ones.
    """
    hashes = content_hashes(lines, "remote_id")
    counts = dict(lines.group_by("remote_id").len().iter_rows()) if lines.height else {}
    stored_by_remote: dict[str, list[dict]] = {}
    for entry in stored_entries.filter(pl.col("exported")).sort("version").iter_rows(named=True):
        stored_by_remote.setdefault(entry["remote_id"], []).append(entry)
    wanted: list[dict] = []
    wanted_lines: list[pl.DataFrame] = []
    reversed_ids: list[str] = []
    for remote in entries.sort("entry_id").iter_rows(named=True):
        remote_id = remote["entry_id"]
        exported = stored_by_remote.get(remote_id, [])
        reversed_already = {e["reverses"] for e in exported if e["kind"] == "reversal"}
        booked = [e for e in exported if e["kind"] != "reversal" and e["entry_id"] not in reversed_already]
        active = booked[-1] if booked else None
        if active is not None and active["content_hash"] == hashes[remote_id]:
            continue
        dated = entry_date_for(remote["entry_date"], closed_through)
        if active is not None:
            rev_id = reversal_id(active["entry_id"])
            rev_lines = _reversal(stored_lines.filter(pl.col("entry_id") == active["entry_id"]),
                                  active["entry_id"], rev_id, dated)
            wanted.append({"entry_id": rev_id, "business_date": active["business_date"], "entry_date": dated,
                           "version": active["version"], "kind": "reversal", "reverses": active["entry_id"],
                           "content_hash": content_hash(rev_lines), "line_count": rev_lines.height})
            wanted_lines.append(rev_lines)
            reversed_ids.append(active["entry_id"])
        version = max((e["version"] for e in exported), default=0) + 1
        new_id = our_entry_id(tenant, source, remote_id, version)
        wanted.append({"entry_id": new_id, "business_date": remote["business_date"], "entry_date": dated,
                       "version": version, "kind": "original" if version == 1 else "correction", "reverses": None,
                       "content_hash": hashes[remote_id], "line_count": counts[remote_id]})
        wanted_lines.append(lines.filter(pl.col("remote_id") == remote_id).with_columns(
            pl.lit(new_id).alias("entry_id"), pl.lit(dated).alias("entry_date")).select(_LINE_COLUMNS))

    to_write = pl.DataFrame(wanted, schema=ENTRY_SCHEMA)
    # Drafts of refused entries stay as they were: the open reject holds their day back from export.
    refused = set(rejects.get_column("record_id").to_list())
    drafts = stored_entries.filter(~pl.col("exported") & ~pl.col("remote_id").is_in(sorted(refused))).select(
        list(ENTRY_SCHEMA))
    identity = ["entry_id", "entry_date", "content_hash"]
    keep = drafts.join(to_write, on=identity, how="semi")
    to_insert = to_write.join(keep, on=identity, how="anti", maintain_order="left")
    deleted = drafts.join(keep, on=identity, how="anti").get_column("entry_id").to_list()
    new_lines = (pl.concat(wanted_lines, how="vertical_relaxed").cast(polars_schema(JournalLine))
                 if wanted_lines else pl.DataFrame(schema=polars_schema(JournalLine)))
    new_lines = new_lines.join(to_insert.select("entry_id"), on="entry_id", how="semi", maintain_order="left")
    return ImportPlan(to_insert, new_lines, sorted(deleted), reversed_ids, entries.height, rejects)
