"""Entry versions: what to write so that the books end up equal to the latest journal.

DESIGN invariants 3 and 4 in one place. For every business date we compare the
journal just built with the entries already stored:

* never exported: the entry is a *draft* and is simply replaced (same id, v1);
* exported, content unchanged: nothing to do (a rerun adds nothing);
* exported, content changed: a *reversal* of the exported version plus a
  *correction* (the next version) — never an edit of what the accounting
  system already has; if the day became empty, the reversal alone.

Drafts that are no longer wanted are deleted; an exported entry never is. The
plan is a pure function of its inputs, so running it twice gives the same ids
and the same content.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from schemas.money import format_money
from transforms.journal import BUILT_LINE_SCHEMA

BUILT_LINE_COLUMNS = list(BUILT_LINE_SCHEMA)  # business_date first

ENTRY_SCHEMA = {"entry_id": pl.String, "business_date": pl.Date, "entry_date": pl.Date, "version": pl.Int64,
                "kind": pl.String, "reverses": pl.String, "content_hash": pl.String, "line_count": pl.Int64}
CONTENT_COLUMNS = ("line_no", "account", "partner_id", "description", "debit", "credit", "currency", "vat_code")


def entry_id(tenant: str, source: str, business_date: date, version: int) -> str:
    return f"{tenant}-{source}-{business_date:%Y%m%d}-v{version}"


def reversal_id(reversed_entry_id: str) -> str:
    return f"{reversed_entry_id}-R"


def content_hash(lines: pl.DataFrame) -> str:
    """Hash of what an entry says (not of its id or date), line by line in order."""
    digest = hashlib.sha256()
    for row in lines.sort("line_no").select(CONTENT_COLUMNS).iter_rows():
        digest.update("\x1f".join("" if v is None else format_money(v) if k in ("debit", "credit") else str(v)
                                  for k, v in zip(CONTENT_COLUMNS, row)).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()


def entry_date_for(business_date: date, closed_through: date | None) -> date:
    """Originals and corrections are dated on their business day unless the books are closed there."""
    if closed_through and business_date <= closed_through:
        return closed_through + timedelta(days=1)
    return business_date


@dataclass(frozen=True)
class VersionPlan:
    delete_entry_ids: list[str]
    entries: pl.DataFrame  # ENTRY_SCHEMA: to insert
    lines: pl.DataFrame  # built-line columns + entry_id, entry_date: to insert
    changed_dates: list[date]  # days with an entry inserted or a draft deleted
    reversed: list[str]  # exported entry ids that this plan reverses


def _reversal_lines(lines: pl.DataFrame, reversed_id: str, business_date: date) -> pl.DataFrame:
    return lines.select(BUILT_LINE_COLUMNS[1:]).with_columns(
        pl.lit(business_date).alias("business_date"),
        pl.col("credit").alias("debit"),
        pl.col("debit").alias("credit"),
        pl.format("Reversal of {}: {}", pl.lit(reversed_id), pl.col("description")).alias("description"),
    )


def plan_versions(*, tenant: str, source: str, built: pl.DataFrame, dates: list[date],
                  stored_entries: pl.DataFrame, stored_lines: pl.DataFrame,
                  closed_through: date | None = None) -> VersionPlan:
    """Compare the journals just built for ``dates`` with what is stored for them.

    ``built`` has one group of lines per business date (absent = empty day).
    ``stored_entries`` has ENTRY_SCHEMA plus ``exported`` (bool) for these dates;
    ``stored_lines`` the lines of exported entries (needed to reverse them).
    """
    built_by_date = built.partition_by("business_date", as_dict=True, maintain_order=True)
    stored_by_date = stored_entries.partition_by("business_date", as_dict=True, maintain_order=True)
    lines_by_entry = stored_lines.partition_by("entry_id", as_dict=True, maintain_order=True)
    wanted_entries: list[dict] = []
    wanted_lines: list[pl.DataFrame] = []
    reversed_ids: list[str] = []
    for day in sorted(set(dates)):
        new = built_by_date.get((day,))
        stored = stored_by_date.get((day,))
        exported = [] if stored is None else stored.filter(pl.col("exported")).sort("version").to_dicts()
        reversed_already = {e["reverses"] for e in exported if e["kind"] == "reversal"}
        booked = [e for e in exported if e["kind"] != "reversal" and e["entry_id"] not in reversed_already]
        active = booked[-1] if booked else None
        next_version = max((e["version"] for e in exported), default=0) + 1
        new_hash = content_hash(new) if new is not None else None
        if active is not None and active["content_hash"] == new_hash:
            continue
        dated = entry_date_for(day, closed_through)
        if active is not None:
            rev_id = reversal_id(active["entry_id"])
            rev_lines = _reversal_lines(lines_by_entry[(active["entry_id"],)], active["entry_id"], day)
            wanted_entries.append({"entry_id": rev_id, "business_date": day, "entry_date": dated,
                                   "version": active["version"], "kind": "reversal",
                                   "reverses": active["entry_id"], "content_hash": content_hash(rev_lines),
                                   "line_count": rev_lines.height})
            wanted_lines.append(rev_lines.select(BUILT_LINE_COLUMNS).with_columns(pl.lit(rev_id).alias("entry_id"),
                                                       pl.lit(dated).alias("entry_date")))
            reversed_ids.append(active["entry_id"])
        if new is not None:
            new_id = entry_id(tenant, source, day, next_version)
            wanted_entries.append({"entry_id": new_id, "business_date": day, "entry_date": dated,
                                   "version": next_version, "kind": "original" if next_version == 1 else "correction",
                                   "reverses": None, "content_hash": new_hash, "line_count": new.height})
            wanted_lines.append(new.select(BUILT_LINE_COLUMNS).with_columns(pl.lit(new_id).alias("entry_id"), pl.lit(dated).alias("entry_date")))

    wanted = pl.DataFrame(wanted_entries, schema=ENTRY_SCHEMA)
    drafts = (stored_entries.filter(~pl.col("exported")).select(list(ENTRY_SCHEMA))
              if not stored_entries.is_empty() else pl.DataFrame(schema=ENTRY_SCHEMA))
    identity = ["entry_id", "entry_date", "content_hash"]
    keep = drafts.join(wanted, on=identity, how="semi")
    to_insert = wanted.join(keep, on=identity, how="anti")
    deleted = drafts.join(keep, on=identity, how="anti")
    to_delete = deleted.get_column("entry_id").to_list()
    changed = set(to_insert.get_column("business_date").to_list()) | set(deleted.get_column("business_date").to_list())
    new_lines = (pl.concat(wanted_lines, how="vertical_relaxed").join(to_insert.select("entry_id"), on="entry_id")
                 if wanted_lines else pl.DataFrame())
    return VersionPlan(sorted(to_delete), to_insert, new_lines, sorted(changed), reversed_ids)
