"""The hotel's daily financial journal: one balanced entry per business date.

Input is already summed per business date (DuckDB does the heavy ``GROUP BY``):

* sales totals per (business_date, category, vat_rate): gross, VAT included;
* payment totals per (business_date, kind, method, partner).

What the accountant gets for each day, all amounts in integer cents until the end:

=====================  =======================================================
revenue                credit, per category and VAT code, net of VAT
VAT payable            credit, per VAT code, computed on the day's gross total
                       at that rate (half away from zero)
rounding               the cents between that VAT and the per-category nets
tourist tax            credit to a liability: collected for the city, not revenue
payments               debit the clearing account of each method (cash, card,
                       transfer), or the debtor of each company (city ledger),
                       or the deposit liability (a deposit applied to a stay)
deposits received      credit the deposit liability (an advance is owed until
                       the stay); debit the method's clearing account
guest ledger           the balancing line: charges posted to folios minus what
                       folios were paid
suspense               categories and methods the mapping does not know
=====================  =======================================================

Groups that cannot be posted correctly (VAT rate different from the mapping's,
a rate no VAT code has) are returned as rejects and left out of the entry; the
caller holds such days back from export.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from schemas.money import MONEY_DTYPE, RATE_DTYPE, div_half_away, from_cents, to_cents
from schemas.tenant import Tenant

SALES_TOTALS_SCHEMA = {"business_date": pl.Date, "category": pl.String, "vat_rate": RATE_DTYPE,
                       "amount": MONEY_DTYPE, "lines": pl.Int64}
PAYMENT_TOTALS_SCHEMA = {"business_date": pl.Date, "kind": pl.String, "method": pl.String,
                         "partner_id": pl.String, "partner_name": pl.String, "amount": MONEY_DTYPE,
                         "lines": pl.Int64}
BUILT_LINE_SCHEMA = {"business_date": pl.Date, "line_no": pl.Int64, "account": pl.String,
                     "account_name": pl.String, "partner_id": pl.String, "partner_name": pl.String,
                     "description": pl.String, "debit": MONEY_DTYPE, "credit": MONEY_DTYPE,
                     "currency": pl.String, "vat_code": pl.String}
ISSUE_SCHEMA = {"business_date": pl.Date, "kind": pl.String, "code": pl.String, "vat_rate": RATE_DTYPE,
                "amount": MONEY_DTYPE, "lines": pl.Int64, "reason": pl.String}

# Sections keep every entry in the order an accountant reads a daily report.
SECTION = {"revenue": 1, "vat": 2, "rounding": 3, "tax": 4, "suspense": 5, "payment": 6, "deposit": 7,
           "guest_ledger": 8}
_LINE = {"business_date": pl.Date, "section": pl.Int64, "account": pl.String, "partner_id": pl.String,
         "partner_name": pl.String, "description": pl.String, "vat_code": pl.String, "cents": pl.Int64}


@dataclass(frozen=True)
class DailyJournals:
    lines: pl.DataFrame  # BUILT_LINE_SCHEMA: balanced per business_date
    suspense: pl.DataFrame  # ISSUE_SCHEMA: what was posted to suspense, and why
    rejects: pl.DataFrame  # ISSUE_SCHEMA: what could not be posted at all


def _rate_bp(column: str = "vat_rate") -> pl.Expr:
    """10.00 % -> 1000 basis points (exact: rates have two decimals)."""
    return (pl.col(column).cast(RATE_DTYPE) * 100).cast(pl.Int64)


def _mapping_frames(tenant: Tenant) -> dict[str, pl.DataFrame]:
    m = tenant.mapping
    vat = tenant.vat_by_code
    return {
        "revenue": pl.DataFrame(
            [{"category": c, "revenue_account": r.account, "mapped_code": r.vat_code,
              "mapped_bp": int(vat[r.vat_code].rate * 100)} for c, r in m.revenue.items()],
            schema={"category": pl.String, "revenue_account": pl.String, "mapped_code": pl.String,
                    "mapped_bp": pl.Int64}),
        "taxes": pl.DataFrame([{"category": c, "tax_account": t.account} for c, t in m.taxes.items()],
                              schema={"category": pl.String, "tax_account": pl.String}),
        "vat_by_rate": pl.DataFrame(
            [{"rate_bp": int(v.rate * 100), "code": v.code} for v in tenant.vat_codes],
            schema={"rate_bp": pl.Int64, "code": pl.String})
        .group_by("rate_bp").agg(pl.col("code").sort().alias("codes")),
        "vat": pl.DataFrame([{"vat_code": v.code, "vat_account": v.account, "vat_bp": int(v.rate * 100)}
                             for v in tenant.vat_codes],
                            schema={"vat_code": pl.String, "vat_account": pl.String, "vat_bp": pl.Int64}),
        "methods": pl.DataFrame(
            [{"method": k, "method_account": r.account, "by_partner": r.by_partner}
             for k, r in m.payment_methods.items()],
            schema={"method": pl.String, "method_account": pl.String, "by_partner": pl.Boolean}),
    }


def _classify_sales(sales: pl.DataFrame, maps: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Each sales total gets a treatment (revenue, tax, suspense or reject) and a VAT code."""
    classified = (
        sales.with_columns(_rate_bp().alias("rate_bp"), to_cents(pl.col("amount")).alias("gross"))
        .join(maps["revenue"], on="category", how="left")
        .join(maps["taxes"], on="category", how="left")
        .join(maps["vat_by_rate"], on="rate_bp", how="left")
    )
    unmapped_code = pl.when(pl.col("codes").list.len() == 1).then(pl.col("codes").list.first())
    return classified.with_columns(
        pl.when(pl.col("revenue_account").is_not_null() & (pl.col("mapped_bp") != pl.col("rate_bp")))
        .then(pl.format("charged at {} % but mapping.revenue.{} uses VAT code {} at {} %",
                        pl.col("vat_rate"), pl.col("category"), pl.col("mapped_code"),
                        (pl.col("mapped_bp").cast(pl.Decimal(7, 2)) / 100).cast(RATE_DTYPE)))
        .when(pl.col("tax_account").is_not_null() & (pl.col("rate_bp") != 0))
        .then(pl.format("is mapped as a tax collected for a third party but carries VAT at {} %",
                        pl.col("vat_rate")))
        .when(pl.col("revenue_account").is_null() & pl.col("tax_account").is_null()
              & (pl.col("rate_bp") != 0) & (pl.col("codes").list.len().fill_null(0) == 0))
        .then(pl.format("is not mapped and no VAT code has the rate {} %", pl.col("vat_rate")))
        .when(pl.col("revenue_account").is_null() & pl.col("tax_account").is_null()
              & (pl.col("codes").list.len() > 1))
        .then(pl.format("is not mapped and VAT codes {} share the rate {} %",
                        pl.col("codes").list.join(", "), pl.col("vat_rate")))
        .alias("reject_reason"),
        pl.when(pl.col("revenue_account").is_not_null()).then(pl.lit("revenue"))
        .when(pl.col("tax_account").is_not_null()).then(pl.lit("tax"))
        .otherwise(pl.lit("suspense")).alias("treatment"),
        pl.when(pl.col("revenue_account").is_not_null()).then(pl.col("mapped_code"))
        .when(pl.col("tax_account").is_null()).then(unmapped_code)
        .alias("vat_code"),
    )


def _sales_lines(classified: pl.DataFrame, maps: dict[str, pl.DataFrame], tenant: Tenant) -> pl.DataFrame:
    suspense = tenant.mapping.suspense_account
    taxed = classified.filter(pl.col("vat_code").is_not_null()).join(maps["vat"], on="vat_code", how="left")
    nets = taxed.with_columns(div_half_away(pl.col("gross") * 10_000, pl.col("vat_bp") + 10_000).alias("net"))
    per_code = nets.group_by("business_date", "vat_code", "vat_account", "vat_bp").agg(
        pl.col("gross").sum(), pl.col("net").sum())
    per_code = per_code.with_columns(
        div_half_away(pl.col("gross") * pl.col("vat_bp"), pl.col("vat_bp") + 10_000).alias("vat"))
    rate_text = (pl.col("vat_bp").cast(pl.Decimal(7, 2)) / 100).cast(RATE_DTYPE).cast(pl.String)

    revenue = nets.select(
        "business_date",
        pl.when(pl.col("treatment") == "revenue").then(pl.lit(SECTION["revenue"]))
        .otherwise(pl.lit(SECTION["suspense"])).alias("section"),
        pl.coalesce("revenue_account", pl.lit(suspense)).alias("account"),
        pl.format("{} {} ({} {} %)", pl.when(pl.col("treatment") == "revenue").then(pl.lit("Revenue"))
                  .otherwise(pl.lit("Unmapped category")), pl.col("category"), pl.col("vat_code"), rate_text)
        .alias("description"),
        "vat_code",
        (-pl.col("net")).alias("cents"),
    )
    vat = per_code.select(
        "business_date", pl.lit(SECTION["vat"]).alias("section"), pl.col("vat_account").alias("account"),
        pl.format("VAT {} {} %", pl.col("vat_code"), rate_text).alias("description"), "vat_code",
        (-pl.col("vat")).alias("cents"),
    )
    rounding = per_code.select(
        "business_date", pl.lit(SECTION["rounding"]).alias("section"),
        pl.lit(tenant.mapping.rounding_account).alias("account"),
        pl.format("VAT rounding {}", pl.col("vat_code")).alias("description"), "vat_code",
        (-(pl.col("gross") - pl.col("vat") - pl.col("net"))).alias("cents"),
    )
    untaxed = classified.filter(pl.col("vat_code").is_null()).select(
        "business_date",
        pl.when(pl.col("treatment") == "tax").then(pl.lit(SECTION["tax"]))
        .otherwise(pl.lit(SECTION["suspense"])).alias("section"),
        pl.coalesce("tax_account", pl.lit(suspense)).alias("account"),
        pl.when(pl.col("treatment") == "tax").then(pl.format("{} collected", pl.col("category")))
        .otherwise(pl.format("Unmapped category {} (no VAT)", pl.col("category"))).alias("description"),
        pl.lit(None, pl.String).alias("vat_code"),
        (-pl.col("gross")).alias("cents"),
    )
    return pl.concat([frame.with_columns(pl.lit(None, pl.String).alias("partner_id"),
                                         pl.lit(None, pl.String).alias("partner_name"))
                      for frame in (revenue, vat, rounding, untaxed)], how="diagonal_relaxed")


def _payment_lines(payments: pl.DataFrame, maps: dict[str, pl.DataFrame], tenant: Tenant) -> pl.DataFrame:
    mapped = payments.with_columns(to_cents(pl.col("amount")).alias("cents")).join(
        maps["methods"], on="method", how="left")
    by_partner = pl.col("by_partner").fill_null(False)
    debit = mapped.group_by(
        "business_date", "kind", "method", "method_account",
        pl.when(by_partner).then(pl.col("partner_id")).alias("partner_id"),
        pl.when(by_partner).then(pl.col("partner_name")).alias("partner_name"),
    ).agg(pl.col("cents").sum())
    debit_lines = debit.select(
        "business_date",
        pl.lit(SECTION["payment"]).alias("section"),
        pl.coalesce("method_account", pl.lit(tenant.mapping.suspense_account)).alias("account"),
        "partner_id",
        "partner_name",
        pl.when(pl.col("method_account").is_null())
        .then(pl.format("Unmapped payment method {} ({})", pl.col("method"), pl.col("kind")))
        .when(pl.col("kind") == "deposit").then(pl.format("Deposits received by {}", pl.col("method")))
        .otherwise(pl.format("Payments by {}", pl.col("method"))).alias("description"),
        pl.lit(None, pl.String).alias("vat_code"),
        "cents",
    )
    deposits = mapped.filter(pl.col("kind") == "deposit").group_by("business_date").agg(
        pl.col("cents").sum()).select(
        "business_date", pl.lit(SECTION["deposit"]).alias("section"),
        pl.lit(tenant.mapping.deposit_account).alias("account"),
        pl.lit(None, pl.String).alias("partner_id"), pl.lit(None, pl.String).alias("partner_name"),
        pl.lit("Deposits received (owed until the stay)").alias("description"),
        pl.lit(None, pl.String).alias("vat_code"), (-pl.col("cents")).alias("cents"))
    return pl.concat([debit_lines, deposits], how="diagonal_relaxed")


def _issues(frame: pl.DataFrame, kind: str, code: str, reason: pl.Expr) -> pl.DataFrame:
    return frame.select(
        "business_date", pl.lit(kind).alias("kind"), pl.col(code).alias("code"),
        (pl.col("vat_rate") if "vat_rate" in frame.columns else pl.lit(None)).cast(RATE_DTYPE).alias("vat_rate"),
        pl.col("amount").cast(MONEY_DTYPE), pl.col("lines").cast(pl.Int64), reason.alias("reason"),
    ).cast(ISSUE_SCHEMA)


def build_daily_journals(sales_totals: pl.DataFrame, payment_totals: pl.DataFrame,
                         tenant: Tenant) -> DailyJournals:
    """Balanced journal lines per business date, from the day's totals and the tenant's mapping."""
    maps = _mapping_frames(tenant)
    classified = _classify_sales(sales_totals.cast(SALES_TOTALS_SCHEMA), maps)  # type: ignore[arg-type]
    rejected = classified.filter(pl.col("reject_reason").is_not_null())
    postable = classified.filter(pl.col("reject_reason").is_null())
    payments = payment_totals.cast(PAYMENT_TOTALS_SCHEMA)  # type: ignore[arg-type]

    sales_lines = _sales_lines(postable, maps, tenant)
    payment_lines = _payment_lines(payments, maps, tenant)
    charged = postable.group_by("business_date").agg(pl.col("gross").sum().alias("charged"))
    settled = payments.filter(pl.col("kind") == "payment").group_by("business_date").agg(
        to_cents(pl.col("amount")).sum().alias("settled"))
    guest_ledger = charged.join(settled, on="business_date", how="full", coalesce=True).select(
        "business_date", pl.lit(SECTION["guest_ledger"]).alias("section"),
        pl.lit(tenant.mapping.guest_ledger_account).alias("account"),
        pl.lit(None, pl.String).alias("partner_id"), pl.lit(None, pl.String).alias("partner_name"),
        pl.lit("Guest ledger: charged to folios less folio payments").alias("description"),
        pl.lit(None, pl.String).alias("vat_code"),
        (pl.col("charged").fill_null(0) - pl.col("settled").fill_null(0)).alias("cents"),
    )
    names = pl.DataFrame({"account": list(tenant.account_names), "account_name": list(tenant.account_names.values())})
    lines = (
        pl.concat([frame.select(list(_LINE)).cast(_LINE) for frame in (sales_lines, payment_lines, guest_ledger)])
        .filter(pl.col("cents") != 0)
        .join(names, on="account", how="left")
        .sort("business_date", "section", "account", "description", "partner_id", nulls_last=True)
        .with_columns(
            (pl.int_range(pl.len()).over("business_date") + 1).alias("line_no"),
            from_cents(pl.when(pl.col("cents") > 0).then(pl.col("cents")).otherwise(0)).alias("debit"),
            from_cents(pl.when(pl.col("cents") < 0).then(-pl.col("cents")).otherwise(0)).alias("credit"),
            pl.lit(tenant.currency).alias("currency"),
        )
        .select(list(BUILT_LINE_SCHEMA))
        .cast(BUILT_LINE_SCHEMA)  # type: ignore[arg-type]
    )
    suspense = pl.concat([
        _issues(postable.filter(pl.col("treatment") == "suspense"), "category", "category",
                pl.format("category {} is not in mapping.revenue or mapping.taxes", pl.col("category"))),
        _issues(payments.join(maps["methods"], on="method", how="anti"), "method", "method",
                pl.format("payment method {} is not in mapping.payment_methods", pl.col("method"))),
    ])
    rejects = _issues(rejected, "category", "category", pl.format("{} {}", pl.col("category"),
                                                                   pl.col("reject_reason")))
    return DailyJournals(lines, suspense, rejects)
