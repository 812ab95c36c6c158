from datetime import date
from decimal import Decimal

import polars as pl

from transforms.journal import BUILT_LINE_SCHEMA
from transforms.versions import ENTRY_SCHEMA, content_hash, plan_versions

DAY = date(2026, 3, 14)
D = Decimal


def built(amount: str, day: date = DAY) -> pl.DataFrame:
    rows = [("706100", "Revenue", D(0), D(amount)), ("511200", "Card", D(amount), D(0))]
    return pl.DataFrame([{"business_date": day, "line_no": n, "account": a, "account_name": a,
                          "partner_id": None, "partner_name": None, "description": desc, "debit": dr, "credit": cr,
                          "currency": "EUR", "vat_code": None} for n, (a, desc, dr, cr) in enumerate(rows, 1)],
                        schema=BUILT_LINE_SCHEMA)


class Store:
    """What the warehouse would hold: entries with an exported flag, and their lines."""

    def __init__(self) -> None:
        self.entries = pl.DataFrame(schema={**ENTRY_SCHEMA, "exported": pl.Boolean})
        self.lines = pl.DataFrame()

    def apply(self, plan, export: bool = False) -> None:
        kept = self.entries.filter(~pl.col("entry_id").is_in(plan.delete_entry_ids))
        added = plan.entries.with_columns(pl.lit(export).alias("exported"))
        self.entries = pl.concat([kept, added])
        new_lines = plan.lines.drop("business_date") if plan.lines.height else plan.lines
        self.lines = pl.concat([self.lines.filter(~pl.col("entry_id").is_in(plan.delete_entry_ids)), new_lines],
                               how="diagonal_relaxed") if self.lines.height else new_lines

    def plan(self, journal: pl.DataFrame | None, closed_through: date | None = None):
        lines = journal if journal is not None else pl.DataFrame(schema=BUILT_LINE_SCHEMA)
        exported = self.entries.filter(pl.col("exported")).get_column("entry_id")
        stored_lines = self.lines.filter(pl.col("entry_id").is_in(exported.implode())) if self.lines.height else \
            pl.DataFrame(schema={**BUILT_LINE_SCHEMA, "entry_id": pl.String})
        return plan_versions(tenant="demo", source="pms", built=lines, dates=[DAY], stored_entries=self.entries,
                             stored_lines=stored_lines, closed_through=closed_through)

    def export_all(self) -> None:
        self.entries = self.entries.with_columns(pl.lit(True).alias("exported"))


def test_a_first_close_writes_version_one():
    plan = Store().plan(built("100.00"))
    assert plan.entries.select("entry_id", "kind").rows() == [("demo-pms-20260314-v1", "original")]
    assert plan.lines.height == 2 and plan.delete_entry_ids == []


def test_a_draft_is_replaced_in_place_and_an_unchanged_draft_is_left_alone():
    store = Store()
    store.apply(store.plan(built("100.00")))
    assert store.plan(built("100.00")).entries.is_empty()
    replan = store.plan(built("120.00"))
    assert replan.delete_entry_ids == ["demo-pms-20260314-v1"]
    assert replan.entries.get_column("entry_id").to_list() == ["demo-pms-20260314-v1"]


def test_an_unchanged_exported_day_adds_nothing():
    store = Store()
    store.apply(store.plan(built("100.00")), export=True)
    plan = store.plan(built("100.00"))
    assert plan.entries.is_empty() and plan.delete_entry_ids == [] and plan.changed_dates == []


def test_a_changed_exported_day_gets_a_reversal_and_a_correction():
    store = Store()
    store.apply(store.plan(built("100.00")), export=True)
    plan = store.plan(built("130.00"))
    assert plan.entries.select("entry_id", "kind", "reverses", "version").rows() == [
        ("demo-pms-20260314-v1-R", "reversal", "demo-pms-20260314-v1", 1),
        ("demo-pms-20260314-v2", "correction", None, 2)]
    reversal = plan.lines.filter(pl.col("entry_id") == "demo-pms-20260314-v1-R")
    assert reversal.select("account", "debit", "credit").rows() == [("706100", D("100.00"), D(0)),
                                                                    ("511200", D(0), D("100.00"))]
    assert reversal.get_column("description").str.starts_with("Reversal of demo-pms-20260314-v1").all()
    assert plan.reversed == ["demo-pms-20260314-v1"]


def test_a_second_change_before_export_replaces_the_pending_correction_only():
    store = Store()
    store.apply(store.plan(built("100.00")), export=True)
    store.apply(store.plan(built("130.00")))
    plan = store.plan(built("140.00"))
    assert plan.delete_entry_ids == ["demo-pms-20260314-v2"]
    assert plan.entries.get_column("entry_id").to_list() == ["demo-pms-20260314-v2"]


def test_going_back_to_the_exported_content_drops_the_pending_reversal_and_correction():
    store = Store()
    store.apply(store.plan(built("100.00")), export=True)
    store.apply(store.plan(built("130.00")))
    plan = store.plan(built("100.00"))
    assert plan.delete_entry_ids == ["demo-pms-20260314-v1-R", "demo-pms-20260314-v2"]
    assert plan.entries.is_empty()


def test_after_the_correction_is_exported_the_next_change_reverses_the_correction():
    store = Store()
    store.apply(store.plan(built("100.00")), export=True)
    store.apply(store.plan(built("130.00")), export=True)
    plan = store.plan(built("150.00"))
    assert plan.entries.get_column("entry_id").to_list() == ["demo-pms-20260314-v2-R", "demo-pms-20260314-v3"]


def test_a_day_that_became_empty_is_only_reversed_and_can_come_back_later():
    store = Store()
    store.apply(store.plan(built("100.00")), export=True)
    emptied = store.plan(None)
    assert emptied.entries.get_column("entry_id").to_list() == ["demo-pms-20260314-v1-R"]
    store.apply(emptied, export=True)
    back = store.plan(built("90.00"))
    assert back.entries.select("entry_id", "kind").rows() == [("demo-pms-20260314-v2", "correction")]


def test_corrections_of_a_closed_period_are_dated_in_the_first_open_day():
    store = Store()
    store.apply(store.plan(built("100.00")), export=True)
    plan = store.plan(built("130.00"), closed_through=date(2026, 3, 31))
    assert set(plan.entries.get_column("entry_date").to_list()) == {date(2026, 4, 1)}
    assert set(plan.entries.get_column("business_date").to_list()) == {DAY}


def test_the_content_hash_ignores_ids_and_dates_but_not_amounts():
    assert content_hash(built("100.00")) == content_hash(built("100.00", date(2026, 3, 15)))
    assert content_hash(built("100.00")) != content_hash(built("100.01"))
