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

from transforms.journal import BUILT_LINE_SCHEMA

BUILT_LINE_COLUMNS = list(BUILT_LINE_SCHEMA)  # business_date first

ENTRY_SCHEMA = {"entry_id": pl.String, "business_date": pl.Date, "entry_date": pl.Date, "version": pl.Int64,
                "kind": pl.String, "reverses": pl.String, "content_hash": pl.String, "line_count": pl.Int64}
CONTENT_COLUMNS = ("line_no", "account", "partner_id", "description", "debit", "credit", "currency", "vat_code")


def entry_id(tenant: str, source: str, business_date: date, version: int) -> str:
    return f"{tenant}-{source}-{business_date:%Y%m%d}-v{version}"


def reversal_id(reversed_entry_id: str) -> str:
    return f"{reversed_entry_id}-R"


def content_hashes(lines: pl.DataFrame, by: str) -> dict:
    """Hash of what each group of lines says (not its id or date), line by line in order.

    One canonical text per line (money as printed, e.g. ``909.10``), joined per group, SHA-256'd:
    a single pass for any number of entries.
    """
    if lines.is_empty():
        return {}
    text = lines.sort(by, "line_no").select(
        by,
        pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in CONTENT_COLUMNS], separator="\x1f")
        .alias("text"),
    ).group_by(by, maintain_order=True).agg(pl.col("text").str.join("\x1e"))
    return {key: hashlib.sha256(value.encode()).hexdigest() for key, value in text.iter_rows()}


def content_hash(lines: pl.DataFrame) -> str:
    return content_hashes(lines.with_columns(pl.lit(0).alias("__entry")), "__entry")[0]


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

    The loop over days only looks at entry headers; lines are hashed and given their entry ids
    in whole-frame operations, so a three-year backfill costs little more than one day.

    ``built`` has one group of lines per business date (absent = empty day).
    ``stored_entries`` has ENTRY_SCHEMA plus ``exported`` (bool) for these dates;
    ``stored_lines`` the lines of exported entries (needed to reverse them).
    """
    new_hashes = content_hashes(built, "business_date")
    line_counts = dict(built.group_by("business_date").len().iter_rows()) if built.height else {}
    stored_by_date: dict[date, list[dict]] = {}
    for entry in stored_entries.filter(pl.col("exported")).sort("version").iter_rows(named=True):
        stored_by_date.setdefault(entry["business_date"], []).append(entry)
    wanted_entries: list[dict] = []
    reversal_lines: list[pl.DataFrame] = []
    reversed_ids: list[str] = []
    for day in sorted(set(dates)):
        exported = stored_by_date.get(day, [])
        reversed_already = {e["reverses"] for e in exported if e["kind"] == "reversal"}
        booked = [e for e in exported if e["kind"] != "reversal" and e["entry_id"] not in reversed_already]
        active = booked[-1] if booked else None
        next_version = max((e["version"] for e in exported), default=0) + 1
        new_hash = new_hashes.get(day)
        if active is not None and active["content_hash"] == new_hash:
            continue
        dated = entry_date_for(day, closed_through)
        if active is not None:
            rev_id = reversal_id(active["entry_id"])
            lines = _reversal_lines(stored_lines.filter(pl.col("entry_id") == active["entry_id"]),
                                    active["entry_id"], day)
            wanted_entries.append({"entry_id": rev_id, "business_date": day, "entry_date": dated,
                                   "version": active["version"], "kind": "reversal",
                                   "reverses": active["entry_id"], "content_hash": content_hash(lines),
                                   "line_count": lines.height})
            reversal_lines.append(lines.select(BUILT_LINE_COLUMNS).with_columns(
                pl.lit(rev_id).alias("entry_id"), pl.lit(dated).alias("entry_date")))
            reversed_ids.append(active["entry_id"])
        if new_hash is not None:
            wanted_entries.append({"entry_id": entry_id(tenant, source, day, next_version), "business_date": day,
                                   "entry_date": dated, "version": next_version,
                                   "kind": "original" if next_version == 1 else "correction", "reverses": None,
                                   "content_hash": new_hash, "line_count": line_counts[day]})

    wanted = pl.DataFrame(wanted_entries, schema=ENTRY_SCHEMA)
    drafts = (stored_entries.filter(~pl.col("exported")).select(list(ENTRY_SCHEMA))
              if not stored_entries.is_empty() else pl.DataFrame(schema=ENTRY_SCHEMA))
    identity = ["entry_id", "entry_date", "content_hash"]
    keep = drafts.join(wanted, on=identity, how="semi")
    to_insert = wanted.join(keep, on=identity, how="anti")
    deleted = drafts.join(keep, on=identity, how="anti")
    to_delete = deleted.get_column("entry_id").to_list()
    changed = set(to_insert.get_column("business_date").to_list()) | set(deleted.get_column("business_date").to_list())
    built_entries = to_insert.filter(pl.col("kind") != "reversal").select("business_date", "entry_id", "entry_date")
    new_lines = pl.concat([
        built.select(BUILT_LINE_COLUMNS).join(built_entries, on="business_date", how="inner", maintain_order="left"),
        *reversal_lines,
    ], how="vertical_relaxed").join(to_insert.select("entry_id"), on="entry_id", how="semi", maintain_order="left")
    return VersionPlan(sorted(to_delete), to_insert, new_lines, sorted(changed), reversed_ids)
