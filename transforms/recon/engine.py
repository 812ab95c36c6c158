"""The reconciliation engine: which bank line settles which open items, and why.

Pure: Polars frames in, frames out, no IO and no clock. The same inputs give the
same decisions in the same order, whatever order the rows came in.

Rules run in order of certainty, and each one only sees what the ones before
left open:

1. ``manual``          confirmations a person made (always first);
2. ``structured_ref``  a structured creditor reference (OGM, RF, KID, …) equal on both sides;
3. ``payout``          a payment processor's payout id: the expected payout, or every item
                       carrying that ``settlement_ref``, net of the processor's fee;
4. ``exact_ref_amount`` / ``multi_ref`` / ``ref_partial``
                       document numbers found in the free text (one or several);
5. ``fuzzy``           a document number or reference with one typo, when only one open item
                       is that close and the amount agrees;
6. ``amount_partner``  the exact amount from a recognised partner (IBAN or name), within
                       the date window;
7. ``many_to_one``     one transfer paying several items of one partner (a unique subset sum).

Candidates that cannot be told apart are never matched: they become suggestions
listing the alternatives. Differences within the tolerance on a referenced
payment become a ``write_off`` row with a reason; larger shortfalls leave the
item open (partial payment). Everything that stays open or looks wrong becomes a
discrepancy, which the flow turns into alerts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import polars as pl

from schemas.money import MONEY_DTYPE, from_cents, to_cents
from transforms.recon import keys as K
from transforms.recon.names import name_similarity, normalise_iban_expr, normalise_name_expr
from transforms.recon.references import find_structured_refs, structured_ref_valid

WRITE_OFF = "write_off"
NO_ITEM = -1
MATCH_COLUMNS = ["bank_line_id", "item_id", "amount_applied", "rule", "confidence", "reason"]
DISCREPANCY_COLUMNS = ["kind", "bank_line_id", "item_id", "amount", "detail"]


@dataclass(frozen=True)
class Rules:
    """What a tenant can tune (INTERFACES §1 flags, tenant ``[reconciliation]`` table)."""

    tolerance_days: int = 45
    amount_tolerance_pct: Decimal = Decimal("3")
    processor_fee_max_pct: Decimal = Decimal("15")  # a payout more than this below its items is not a fee
    name_threshold: float = 0.8  # not money: a similarity score
    fuzzy_min_length: int = 6  # shortest reference body where one typo is still tolerated
    subset_max_items: int = 24  # a partner's open items tried for one batch payment
    subset_max_size: int = 6  # items one transfer may pay without any reference
    subset_budget: int = 20_000  # search steps per line before giving up (then: nothing decided)
    suggest_max: int = 5  # alternatives listed per suggestion


@dataclass(frozen=True)
class Suggestion:
    bank_line_id: str
    candidates: tuple[str, ...]
    why: str


@dataclass
class Reconciliation:
    """The outcome of one run: match rows (MATCHES.csv), suggestions, discrepancies."""

    matches: pl.DataFrame
    suggestions: list[Suggestion]
    discrepancies: pl.DataFrame
    unmatched_lines: list[str]
    unmatched_items: list[str]
    bank_lines: int
    items: int
    matched_items: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)

    def report(self) -> dict:
        """REPORT.json of INTERFACES §1 (its keys first, ours after)."""
        matched_lines = self.matches.filter(pl.col("rule") != WRITE_OFF)["bank_line_id"].n_unique()
        return {
            "bank_lines": self.bank_lines,
            "items": self.items,
            "matched_lines": matched_lines,
            "matched_items": self.matched_items,
            "unmatched_lines": self.unmatched_lines,
            "unmatched_items": self.unmatched_items,
            "suggestions": [
                {"bank_line_id": s.bank_line_id, "candidates": list(s.candidates), "why": s.why}
                for s in self.suggestions
            ],
            "by_rule": self.by_rule,
            "discrepancies": self.discrepancies.with_columns(pl.col("amount").cast(pl.String)).to_dicts(),
        }


# --------------------------------------------------------------------------- preparation

def _partner_columns(frame: pl.DataFrame, name: str, iban: str) -> pl.DataFrame:
    """iban, name (normalised once: it is the costly part), its words sorted, its first 6 letters.

    Banks write umlauts out (MUELLER, OERESUND, ZUERCHER) where invoices keep them (Müller, ...),
    and accents are stripped to the bare letter, so AE/OE/UE are folded to A/O/U on both sides."""
    frame = frame.with_columns(
        normalise_name_expr(pl.col(name).fill_null("")).str.replace_all(r"([AOU])E", "${1}").alias("name"),
        normalise_iban_expr(pl.col(iban)).alias("iban"))
    return frame.with_columns(
        pl.col("name").str.split(" ").list.sort().list.join(" ").alias("name_sorted"),
        pl.col("name").str.replace_all(" ", "").str.slice(0, 6).alias("name6"),
        pl.col("name").str.replace_all(" ", "").str.slice(0, 12).alias("name12"),
    )


def _prepare_lines(bank: pl.DataFrame) -> pl.DataFrame:
    return (
        _partner_columns(bank.sort("booking_date", "bank_line_id").with_row_index("line_idx"),
                         "counterparty_name", "counterparty_iban")
        .select(
            "line_idx",
            "bank_line_id",
            normalise_iban_expr(pl.col("bank_account")).alias("account"),
            pl.col("booking_date").alias("date"),
            to_cents(pl.col("amount")).alias("cents"),
            "currency",
            "iban", "name", "name_sorted", "name6", "name12",
            normalise_iban_expr(pl.col("structured_ref")).alias("sref"),
            pl.concat_str([pl.col("remittance_info").fill_null(""), pl.col("structured_ref").fill_null("")],
                          separator=" ").alias("text"),
        )
    )


def _prepare_items(items: pl.DataFrame) -> pl.DataFrame:
    return (
        _partner_columns(items.sort("issue_date", "due_date", "document_number", "item_id", nulls_last=True)
                         .with_row_index("item_idx"), "partner_name", "partner_iban")
        .select(
            "item_idx",
            "item_id",
            "kind",
            "document_number",
            "issue_date",
            pl.coalesce("due_date", "issue_date").alias("due"),
            to_cents(pl.col("amount_open")).alias("cents"),
            "currency",
            "iban", "name", "name_sorted", "name6", "name12",
            "partner_id",
            "company_id",
            normalise_iban_expr(pl.col("bank_account")).alias("account"),
            normalise_iban_expr(pl.col("structured_ref")).alias("sref"),
            normalise_iban_expr(pl.col("settlement_ref")).alias("settlement"),
        )
    )


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


# --------------------------------------------------------------------------- the book

class _Book:
    """What is still open while the rules run, and every decision made so far."""

    def __init__(self, lines: pl.DataFrame, items: pl.DataFrame, rules: Rules, rejected: set[tuple[int, int]]):
        self.lines, self.items, self.rules = lines, items, rules
        self.line_amount = lines["cents"].to_list()
        self.line_rem = list(self.line_amount)
        self.item_amount = items["cents"].to_list()
        self.item_rem = list(self.item_amount)
        self.item_due = items["due"].to_list()
        self.item_doc = items["document_number"].to_list()
        self.rejected = rejected
        self.blocked: set[int] = set()  # lines no later rule may touch (ambiguous, double payment)
        self.paid_before: set[int] = set()  # items settled by earlier runs (known, never applied to)
        self.rows: dict[tuple[int, int], list] = {}
        self.suggestions: dict[int, tuple[list[int], str]] = {}
        self.discrepancies: list[tuple[str, int, int, int, str]] = []

    # -- state
    def untouched(self, li: int) -> bool:
        return li not in self.blocked and self.line_rem[li] == self.line_amount[li] and self.line_rem[li] != 0

    def open_lines(self) -> pl.Series:
        rem = pl.Series(self.line_rem, dtype=pl.Int64)
        untouched = (rem == pl.Series(self.line_amount, dtype=pl.Int64)) & (rem != 0)
        found = untouched.arg_true().cast(pl.UInt32).alias("line_idx")
        return found.filter(~found.is_in(list(self.blocked))) if self.blocked else found

    def item_rem_series(self) -> pl.Series:
        return pl.Series("rem", self.item_rem, pl.Int64)

    def line_rem_series(self) -> pl.Series:
        return pl.Series("line_rem", self.line_rem, pl.Int64)

    def within_tolerance(self, difference: int, total: int) -> bool:
        return abs(difference) * 100 <= abs(total) * self.rules.amount_tolerance_pct

    # -- decisions
    def apply(self, li: int, ii: int, cents: int, rule: str, confidence: float, reason: str | None = None) -> None:
        if cents == 0:
            return
        row = self.rows.get((li, ii))
        if row is None:
            self.rows[(li, ii)] = [cents, rule, confidence, reason]
        else:  # the same pair again (a manual top-up): one row per pair
            row[0] += cents
        self.line_rem[li] -= cents
        if ii != NO_ITEM:
            self.item_rem[ii] -= cents

    def suggest(self, li: int, candidates: list[int], why: str) -> None:
        if li not in self.suggestions:
            self.suggestions[li] = (candidates[: self.rules.suggest_max], why)
        self.blocked.add(li)

    def note(self, kind: str, li: int, ii: int, cents: int, detail: str) -> None:
        self.discrepancies.append((kind, li, ii, cents, detail))

    def settle(self, li: int, targets: list[int], rule: str, confidence: float, *, payout: bool = False) -> None:
        """Apply line ``li`` to ``targets`` (open items found by reference), the way an
        accountant would: in full when the amounts agree or differ within tolerance
        (the difference written off), oldest first when it is short (partial payment),
        and leaving the excess open when it pays too much."""
        targets = [ii for ii in targets if self.item_rem[ii] != 0]
        amount = self.line_rem[li]
        if not targets:
            return
        total = sum(self.item_rem[ii] for ii in targets)
        difference = amount - total
        if difference == 0:
            for ii in targets:
                self.apply(li, ii, self.item_rem[ii], rule, confidence)
            return
        fee_ok = (
            payout
            and _sign(total) == _sign(amount)
            and abs(amount) < abs(total)
            and abs(difference) * 100 <= abs(total) * self.rules.processor_fee_max_pct
        )
        if fee_ok or (_sign(total) == _sign(amount) and self.within_tolerance(difference, total)):
            reason = "processor_fee" if fee_ok else _write_off_reason(difference, total)
            for ii in targets:
                self.apply(li, ii, self.item_rem[ii], rule, confidence)
            self.apply(li, NO_ITEM, difference, WRITE_OFF, confidence, reason)
            self.note("write_off", li, NO_ITEM, difference, f"{reason}: {_money(difference)} written off")
            return
        if payout:
            self.suggest(li, targets, f"payout differs from its items by {_money(difference)}, more than a fee")
            return
        if abs(amount) < abs(total):  # short: a partial payment, oldest items first
            left = amount
            for ii in sorted(targets, key=lambda i: (self.item_due[i], self.item_doc[i])):
                part = self.item_rem[ii] if abs(self.item_rem[ii]) <= abs(left) else left
                self.apply(li, ii, part, rule if part == self.item_rem[ii] else "ref_partial", confidence)
                left -= part
                if left == 0:
                    break
            self.note("partial_payment", li, targets[0], -difference, f"{_money(-difference)} still open")
            return
        for ii in targets:  # too much: the items are paid, the rest of the line stays open
            self.apply(li, ii, self.item_rem[ii], rule, confidence)
        self.note("overpayment", li, targets[0], difference, f"{_money(difference)} paid above the items")


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _write_off_reason(difference: int, total: int) -> str:
    """Why a small difference exists, from its size: cents are rounding, a round share
    of the total is a cash discount, any other shortfall is a bank's charge."""
    if abs(difference) < 100:
        return "rounding"
    if difference > 0:
        return "other"
    for tenths in (5, 10, 15, 20, 25, 30):  # 0.5 % .. 3 % early-payment discounts
        if abs(abs(total) * tenths - abs(difference) * 1000) <= 1000:
            return "discount"
    return "bank_fee"


# --------------------------------------------------------------------------- candidate pairs

def _pair_features(book: _Book, pairs: pl.DataFrame, slow_names: bool = True) -> pl.DataFrame:
    """Everything the rules ask of a (line, item) pair, vectorised."""
    lines = book.lines.select(
        "line_idx", "date", "currency", "account", "iban", "name", "name_sorted",
        pl.lit(book.line_rem_series()).alias("line_rem"), pl.col("cents").alias("line_cents"),
    )
    items = book.items.select(
        "item_idx", "issue_date", "due", "kind", "company_id",
        pl.col("currency").alias("item_currency"), pl.col("account").alias("item_account"),
        pl.col("iban").alias("item_iban"), pl.col("name").alias("item_name"),
        pl.col("name_sorted").alias("item_name_sorted"),
        pl.lit(book.item_rem_series()).alias("rem"),
    )
    pairs = pairs.join(lines, on="line_idx", how="left").join(items, on="item_idx", how="left")
    days = pl.duration(days=book.rules.tolerance_days)
    named = (pl.col("name") != "") & (pl.col("item_name") != "")
    # a bank field cut at 18 or 35 characters: the cut name still has two words and ten letters
    # (a lone "MULLER" is not a truncation of "MULLER SOHNE WASCHEREI")
    line_cut = (pl.col("name").str.len_chars() >= 10) & pl.col("name").str.contains(" ") & pl.col(
        "item_name").str.starts_with(pl.col("name"))
    item_cut = (pl.col("item_name").str.len_chars() >= 10) & pl.col("item_name").str.contains(" ") & pl.col(
        "name").str.starts_with(pl.col("item_name"))
    quick_name = named & (
        (pl.col("name") == pl.col("item_name"))
        | (pl.col("name_sorted") == pl.col("item_name_sorted"))
        | line_cut | item_cut
    )
    pairs = pairs.with_columns(
        (pl.col("currency") == pl.col("item_currency")).alias("same_currency"),
        (pl.col("line_rem").sign() == pl.col("rem").sign()).alias("same_sign"),
        (pl.col("item_account").is_null() | (pl.col("item_account") == pl.col("account"))).alias("account_ok"),
        ((pl.col("date") >= pl.col("issue_date") - days) & (pl.col("date") <= pl.col("due") + days)).alias("in_window"),
        (pl.col("iban").is_not_null() & (pl.col("iban") == pl.col("item_iban"))).alias("iban_eq"),
        quick_name.alias("quick_name"),
        named.alias("named"),
    )
    slow = pairs.filter(pl.col("named") & ~pl.col("quick_name") & ~pl.col("iban_eq")).select(
        "name", "item_name").unique()  # one score per pair of names, however many lines and items share it
    if slow.height and slow_names:
        threshold = book.rules.name_threshold
        similar = pl.Series([name_similarity(a, b) >= threshold for a, b in slow.iter_rows()], dtype=pl.Boolean)
        scored = slow.with_columns(similar.alias("slow_name"))
    else:
        scored = pl.DataFrame(schema={"name": pl.String, "item_name": pl.String, "slow_name": pl.Boolean})
    pairs = pairs.join(scored, on=["name", "item_name"], how="left", maintain_order="left")
    company = _company_ok(book, pairs)
    return pairs.with_columns(
        (pl.col("iban_eq") | pl.col("quick_name") | pl.col("slow_name").fill_null(False)).alias("partner_ok"),
        company.alias("company_ok"),
    ).drop("slow_name")


def _company_ok(book: _Book, pairs: pl.DataFrame) -> pl.Series:
    """Multi-entity tenants: an item of company A is not paid into company B's account.
    Which company owns an account is learnt from the items that name both."""
    owners = (
        book.items.filter(pl.col("account").is_not_null() & pl.col("company_id").is_not_null())
        .group_by("account").agg(pl.col("company_id").unique())
        .filter(pl.col("company_id").list.len() == 1)
        .select(pl.col("account"), pl.col("company_id").list.first().alias("line_company"))
    )
    joined = pairs.select("account", "company_id").join(owners, on="account", how="left", maintain_order="left")
    return (
        joined["company_id"].is_null() | joined["line_company"].is_null()
        | (joined["company_id"] == joined["line_company"])
    ).alias("company_ok")


def _drop_rejected(book: _Book, pairs: pl.DataFrame) -> pl.DataFrame:
    if not book.rejected or pairs.is_empty():
        return pairs
    rejected = pl.DataFrame(
        {"line_idx": [p[0] for p in book.rejected], "item_idx": [p[1] for p in book.rejected]},
        schema={"line_idx": pairs.schema["line_idx"], "item_idx": pairs.schema["item_idx"]},
    )
    return pairs.join(rejected, on=["line_idx", "item_idx"], how="anti", maintain_order="left")


def _usable(book: _Book, pairs: pl.DataFrame, *, report_currency: bool, slow_names: bool = True) -> pl.DataFrame:
    """Features, minus pairs no rule may use; a strong reference to an item in another
    currency is reported (a payment in the wrong currency stays unmatched)."""
    pairs = _pair_features(book, _drop_rejected(book, pairs), slow_names)
    if report_currency:
        strong = pl.col("strength") == 2 if "strength" in pairs.columns else pl.lit(True)
        wrong = pairs.filter(~pl.col("same_currency") & (pl.col("rem") != 0) & strong)
        for li, ii, cur, item_cur in wrong.select("line_idx", "item_idx", "currency", "item_currency").unique(
                subset=["line_idx", "item_idx"], maintain_order=True).iter_rows():
            book.note("currency_mismatch", li, ii, book.line_rem[li],
                      f"line in {cur} refers to an item in {item_cur}")
    return pairs.filter(pl.col("same_currency") & pl.col("same_sign") & pl.col("account_ok")
                        & pl.col("company_ok") & (pl.col("rem") != 0))


_ROW_COLUMNS = ("line_idx", "item_idx", "key", "settlement", "start", "end", "strength", "partner_ok", "iban_eq",
                "rem", "line_rem", "lines_for_item")


def _lines_in_order(pairs: pl.DataFrame) -> list[tuple[int, list[dict]]]:
    """Candidate rows grouped by line, lines in processing order (date, id). Only the columns
    the rules read are turned into Python objects: that is most of the cost at scale."""
    columns = [c for c in _ROW_COLUMNS if c in pairs.columns]
    grouped: dict[int, list[dict]] = {}
    for values in pairs.select(columns).sort("line_idx", "item_idx").iter_rows():
        row = dict(zip(columns, values))
        grouped.setdefault(row["line_idx"], []).append(row)
    return sorted(grouped.items())


# --------------------------------------------------------------------------- the rules

def _manual(book: _Book, confirmed: list[tuple[int, int, int | None]]) -> None:
    """A person's confirmations, held to the same invariants as the rules: same currency, same
    sign, never more than the line or the item still has open; one that breaks them is
    reported, not applied."""
    line_currency, item_currency = book.lines["currency"].to_list(), book.items["currency"].to_list()
    for li, ii, cents in confirmed:
        line, item = book.line_rem[li], book.item_rem[ii]
        if (li, ii) in book.rows:
            continue  # the same pair confirmed twice: once is enough
        problem = None
        if line_currency[li] != item_currency[ii]:
            problem = f"line in {line_currency[li]}, item in {item_currency[ii]}"
        elif line == 0 or item == 0 or _sign(line) != _sign(item):
            problem = "nothing open on one side, or opposite signs"
        else:
            cents = cents if cents is not None else (line if abs(line) <= abs(item) else item)
            if _sign(cents) != _sign(line) or abs(cents) > abs(line) or abs(cents) > abs(item):
                problem = f"{_money(cents)} is more than is open, or has the wrong sign"
        if problem:
            book.note("decision_refused", li, ii, cents or 0, f"confirmation not applied: {problem}")
            continue
        book.apply(li, ii, cents, "manual", 1.0)
        book.blocked.add(li)  # what a person matched, no rule adds to


def _structured(book: _Book) -> None:
    """Rule 2: a structured reference on the line (its own column, or decorated in the
    text) equal to an item's. Check digits make a valid one certain; an invalid one
    only counts when it is long and equal character for character."""
    open_lines = book.lines.join(book.open_lines().to_frame(), on="line_idx")
    own = open_lines.filter(pl.col("sref").is_not_null() & (pl.col("sref").str.len_chars() >= 6)).select(
        "line_idx", pl.col("sref").alias("key"))
    in_text = open_lines.filter(pl.col("text").str.contains(r"(?i)\+\+\+|\*\*\*|RF\d\d")).select("line_idx", "text")
    found = [(li, ref) for li, text in in_text.iter_rows() for ref in find_structured_refs(text)]
    keys = pl.concat([own, pl.DataFrame(found, schema={"line_idx": pl.UInt32, "key": pl.String}, orient="row")])
    item_refs = book.items.filter(pl.col("sref").is_not_null()).select("item_idx", pl.col("sref").alias("key"))
    pairs = keys.unique().join(item_refs, on="key").select("line_idx", "item_idx", "key")
    if pairs.is_empty():
        return
    valid = {k: structured_ref_valid(k) for k in pairs["key"].unique().to_list()}
    pairs = _usable(book, pairs, report_currency=True)
    for li, rows in _lines_in_order(pairs):
        if not book.untouched(li):
            continue
        targets = _resolve(book, li, rows)
        if targets:
            confidence = 0.99 if all(valid[r["key"]] for r in rows if r["item_idx"] in targets) else 0.95
            book.settle(li, targets, "structured_ref", confidence)


def _resolve(book: _Book, li: int, rows: list[dict], key: str = "key") -> list[int] | None:
    """The items a line's references point at, or None (and a suggestion) when one of its
    references points at several items that neither partner, account nor amount tells apart."""
    by_key: dict[str, list[dict]] = {}
    for row in rows:
        by_key.setdefault(row[key], []).append(row)
    targets: list[int] = []
    for candidates in by_key.values():
        chosen = candidates
        if len(chosen) > 1:
            chosen = [r for r in chosen if r["partner_ok"]] or chosen
        if len(chosen) > 1:
            chosen = [r for r in chosen if r["rem"] == r["line_rem"]] or chosen
        if len(chosen) > 1:
            ids = sorted({r["item_idx"] for r in chosen})
            if len(ids) > 1:
                book.suggest(li, ids, "one reference fits several open items")
                return None
        for r in chosen[:1]:
            if r["item_idx"] not in targets:
                targets.append(r["item_idx"])
    return targets


def _payouts(book: _Book) -> None:
    """Rule 3: a payout id in the line's text. An expected payout (kind ``payout``)
    settles it one to one; otherwise every item carrying that ``settlement_ref`` does,
    net of the processor's fee — never both."""
    settlement = book.items.filter(pl.col("settlement").is_not_null())
    payouts = book.items.filter(pl.col("kind") == "payout")
    if settlement.is_empty() and payouts.is_empty():
        return
    expected = pl.concat([
        settlement.filter(pl.col("kind") == "payout").select("item_idx", "settlement"),
        payouts.select("item_idx", pl.col("document_number").str.to_uppercase().str.replace_all(
            r"[^0-9A-Z]+", "").alias("settlement")),
    ]).unique()
    grouped = settlement.filter(pl.col("kind") != "payout").select("item_idx", "settlement")
    chunks = (  # payout ids look like po_1PqRsT2e, stl_ZDgJGbaeQY, 9XK31234AB: runs joined by _ or -
        book.lines.join(book.open_lines().to_frame(), on="line_idx")
        .select("line_idx", pl.col("text").str.extract_all(r"[A-Za-z0-9]+(?:[_-][A-Za-z0-9]+)*").alias("chunk"))
        .explode("chunk")
        .select("line_idx", pl.col("chunk").str.to_uppercase().str.replace_all(r"[^0-9A-Z]+", "").alias("settlement"))
        .filter(pl.col("settlement").str.len_chars() >= 6)
    )
    line_keys = pl.concat([
        chunks,
        book.lines.filter(pl.col("sref").is_not_null()).select("line_idx", pl.col("sref").alias("settlement"))
        .join(book.open_lines().to_frame(), on="line_idx"),
    ]).unique()
    one_to_one = _usable(book, line_keys.join(expected, on="settlement"), report_currency=True)
    for li, rows in _lines_in_order(one_to_one):
        if book.untouched(li):
            targets = _resolve(book, li, rows, key="settlement")
            if targets:
                book.settle(li, targets, "payout", 0.97, payout=True)
    # Items settled through the payout: sign per item may differ (refunds inside a payout).
    hits = line_keys.join(grouped, on="settlement")
    if hits.is_empty():
        return
    features = _pair_features(book, _drop_rejected(book, hits)).filter(pl.col("rem") != 0)
    for li, ii, cur, item_cur in features.filter(~pl.col("same_currency")).select(
            "line_idx", "item_idx", "currency", "item_currency").iter_rows():
        book.note("currency_mismatch", li, ii, book.line_rem[li], f"payout in {cur} names an item in {item_cur}")
    ok = features.filter(pl.col("same_currency") & pl.col("account_ok") & pl.col("company_ok"))
    for li, rows in _lines_in_order(ok):
        if book.untouched(li):
            book.settle(li, sorted({r["item_idx"] for r in rows}), "payout", 0.97, payout=True)


_KIND_RANK = {"S": 4, "F": 3, "G": 2, "O": 2, "D": 1, "L": 1}


def _document_numbers(book: _Book, text_keys: pl.DataFrame, doc_keys: pl.DataFrame) -> None:
    """Rule 4: document numbers in the free text.

    Keys from overlapping windows of the text are one *mention*; within a mention the
    most specific key type wins (full number over digit groups over bare digits), so
    ``INV-2024-00123`` does not also pay ``CN-2024-00123``. Separate mentions are
    separate documents (one transfer paying several invoices). A weak mention (a short
    digit run) counts only when the partner or the amount agrees."""
    open_keys = text_keys.join(book.open_lines().to_frame(), on="line_idx")
    pairs = open_keys.join(doc_keys, on="key", suffix="_item").select(
        "line_idx", "item_idx", "start", "end", "key",
        pl.min_horizontal("strength", "strength_item").alias("strength"))
    if pairs.is_empty():
        return
    # an item's best hit in a line is the one that counts (its weaker readings add nothing)
    rank = pl.col("key").str.slice(0, 1).replace_strict(_KIND_RANK, return_dtype=pl.Int8)
    pairs = (pairs.with_columns(rank.alias("_rank"), (pl.col("end") - pl.col("start")).alias("_width"))
             .sort("line_idx", "item_idx", "_rank", "strength", "_width", "start",
                   descending=[False, False, True, True, True, False])
             .unique(subset=["line_idx", "item_idx"], keep="first", maintain_order=True)
             .drop("_rank", "_width"))
    pairs = _usable(book, pairs, report_currency=True)
    for li, rows in _lines_in_order(pairs):
        if not book.untouched(li):
            continue
        if len(rows) == 1:  # the common case: one number, one item
            row = rows[0]
            if row["strength"] == 2 or row["partner_ok"] or book.within_tolerance(row["line_rem"] - row["rem"],
                                                                                  row["rem"]):
                book.settle(li, [row["item_idx"]], "exact_ref_amount", 0.97 if row["strength"] == 2 else 0.93)
            continue
        targets: list[int] = []
        unconfirmed: list[int] = []  # weak mentions nothing vouched for (yet)
        strong = True
        for mention in _mentions(rows):
            winner = _mention_winner(book, li, mention)
            if winner is None:
                if li in book.suggestions:
                    break
                continue
            ii, is_strong, vouched = winner
            if not vouched:
                unconfirmed.append(ii)
                continue
            strong = strong and is_strong
            if ii not in targets:
                targets.append(ii)
        if li in book.suggestions:
            continue
        # weak numbers in a text naming several documents count when they make the total exact
        extra = [ii for ii in dict.fromkeys(unconfirmed) if ii not in targets]
        if extra and sum(book.item_rem[ii] for ii in targets + extra) == book.line_rem[li]:
            targets += extra
            strong = False
        if not targets:
            continue
        rule = "multi_ref" if len(targets) > 1 else "exact_ref_amount"
        book.settle(li, targets, rule, 0.97 if strong else 0.93)


def _mentions(rows: list[dict]) -> list[list[dict]]:
    """Group a line's key hits into mentions of documents. The most specific hits claim their
    stretch of text first; a weaker hit overlapping it is another reading of the same words and
    is dropped, unless it is as specific and names another item (then both are candidates of one
    mention). Hits of an item already claimed nearby are that item again."""
    def rank(row: dict) -> tuple[int, int]:
        return _KIND_RANK[row["key"][0]], row["strength"]

    ordered = sorted(rows, key=lambda r: (tuple(-x for x in rank(r)), r["start"] - r["end"], r["start"], r["item_idx"]))
    groups: list[dict] = []
    for row in ordered:
        over = [g for g in groups if row["start"] <= g["end"] and g["start"] <= row["end"]]
        if any(row["item_idx"] in g["items"] for g in over):
            continue
        if over:
            tied = [g for g in over if g["rank"] == rank(row)]
            if tied:
                tied[0]["rows"].append(row)
                tied[0]["items"].add(row["item_idx"])
            continue
        groups.append({"start": row["start"], "end": row["end"], "rank": rank(row), "rows": [row],
                       "items": {row["item_idx"]}})
    return [g["rows"] for g in sorted(groups, key=lambda g: g["start"])]


def _mention_winner(book: _Book, li: int, mention: list[dict]) -> tuple[int, bool, bool] | None:
    """The one item a mention names, whether its key was strong, and whether something vouches
    for it (a strong key, the partner, or the amount); None when it names several items that
    nothing tells apart (then the line becomes a suggestion)."""
    best: dict[int, dict] = {}
    for row in mention:
        rank = (_KIND_RANK[row["key"][0]], row["strength"])
        if row["item_idx"] not in best or rank > best[row["item_idx"]]["rank"]:
            best[row["item_idx"]] = {**row, "rank": rank}
    top = max(r["rank"] for r in best.values())
    chosen = [r for r in best.values() if r["rank"] == top]
    if len(chosen) > 1:
        chosen = [r for r in chosen if r["partner_ok"]] or chosen
    if len(chosen) > 1:
        chosen = [r for r in chosen if r["rem"] == r["line_rem"]] or chosen
    if len(chosen) > 1:
        book.suggest(li, sorted(r["item_idx"] for r in chosen), "one document number fits several open items")
        return None
    row = chosen[0]
    vouched = row["strength"] == 2 or row["partner_ok"] or book.within_tolerance(row["line_rem"] - row["rem"],
                                                                                 row["rem"])
    return row["item_idx"], row["strength"] == 2, vouched


def _double_payments(book: _Book, text_keys: pl.DataFrame, doc_keys: pl.DataFrame) -> None:
    """A line whose strong references name only items that are already paid is a double
    payment: it is reported and kept away from the amount rules."""
    line_keys = pl.concat([
        text_keys.filter(pl.col("strength") == 2).select("line_idx", "key"),
        book.lines.filter(pl.col("sref").is_not_null()).select("line_idx", ("S:" + pl.col("sref")).alias("key")),
    ]).join(book.open_lines().to_frame(), on="line_idx")
    item_keys = pl.concat([
        doc_keys.filter(pl.col("strength") == 2).select("item_idx", "key"),
        book.items.filter(pl.col("sref").is_not_null()).select("item_idx", ("S:" + pl.col("sref")).alias("key")),
    ])
    pairs = line_keys.join(item_keys, on="key").select("line_idx", "item_idx").unique()
    if pairs.is_empty():
        return
    line_currency = book.lines["currency"].to_list()
    item_currency = book.items["currency"].to_list()
    per_line: dict[int, list[int]] = {}
    for li, ii in pairs.iter_rows():
        per_line.setdefault(li, []).append(ii)
    for li in sorted(per_line):
        named = per_line[li]
        usable = [ii for ii in named if item_currency[ii] == line_currency[li]
                  and _sign(book.item_amount[ii]) == _sign(book.line_rem[li])]
        if usable and len(usable) == len(named) and all(book.item_rem[ii] == 0 for ii in usable):
            book.note("double_payment", li, min(usable), book.line_rem[li], "refers to an item that is already paid")
            book.blocked.add(li)


def _fuzzy(book: _Book, doc_keys: pl.DataFrame, text_keys: pl.DataFrame) -> None:
    """Rule 5: one typo in a document number or reference (a character wrong, missing, extra,
    or two swapped), where the line pays exactly what the item has open and no other open
    item of that amount is that close. The amount comes first: it bounds the candidates to a
    handful per line, so the typo check stays cheap on a million lines."""
    minimum = book.rules.fuzzy_min_length
    typo_kinds = pl.col("key").str.slice(0, 1).is_in(["F", "G"])  # bare digit runs: too many neighbours
    long_enough = pl.col("key").str.len_chars() >= minimum + 2
    items = book.items.select("item_idx", "currency", book.item_rem_series().alias("amount")).filter(
        pl.col("amount") != 0)
    crowded = items.group_by("currency", "amount").len().filter(pl.col("len") > 50)
    lines = book.lines.join(book.open_lines().to_frame(), on="line_idx").select(
        "line_idx", "currency", pl.col("cents").alias("amount"), "text", "sref")
    # a line whose reference names an item exactly (paid, in another currency, ...) has no typo
    exact = pl.concat([
        text_keys.filter(pl.col("strength") == 2).join(doc_keys.filter(pl.col("strength") == 2), on="key",
                                                       how="semi").select("line_idx"),
        book.lines.filter(pl.col("sref").is_not_null()).join(
            book.items.filter(pl.col("sref").is_not_null()).select("sref"), on="sref", how="semi").select("line_idx"),
    ])
    lines = lines.join(exact, on="line_idx", how="anti")
    same_amount = lines.join(items.join(crowded, on=["currency", "amount"], how="anti"),
                             on=["currency", "amount"]).select("line_idx", "item_idx")
    if same_amount.is_empty():
        return
    candidates = lines.join(same_amount.select("line_idx").unique(), on="line_idx")
    line_keys = pl.concat([
        K.text_keys(candidates.select("line_idx", "text")).filter(typo_kinds).select("line_idx", "key"),
        candidates.filter(pl.col("sref").is_not_null()).select("line_idx", ("S:" + pl.col("sref")).alias("key")),
    ]).filter(long_enough).unique()
    item_keys = pl.concat([
        doc_keys.filter(typo_kinds).select("item_idx", "key", "strength"),
        book.items.filter(pl.col("sref").is_not_null()).select(
            "item_idx", ("S:" + pl.col("sref")).alias("key"), pl.lit(2, pl.Int8).alias("strength")),
    ]).filter(long_enough).join(same_amount.select("item_idx").unique(), on="item_idx").unique(
        subset=["item_idx", "key"])
    close = (
        same_amount.join(line_keys, on="line_idx")
        .join(item_keys.rename({"key": "key_item"}), on="item_idx")
        .filter((pl.col("key").str.slice(0, 2) == pl.col("key_item").str.slice(0, 2))
                & ((pl.col("key").str.len_chars() - pl.col("key_item").str.len_chars()).abs() <= 1)
                & (pl.col("key") != pl.col("key_item")))
    )
    if close.is_empty():
        return
    typo = [K.damerau_one(a[2:], b[2:]) for a, b in close.select("key", "key_item").iter_rows()]
    close = close.filter(pl.Series(typo, dtype=pl.Boolean))
    pairs = _usable(book, close.sort("strength", descending=True).unique(
        subset=["line_idx", "item_idx"], keep="first").select("line_idx", "item_idx", "strength"),
        report_currency=False).with_columns(pl.len().over("item_idx").alias("lines_for_item"))
    for li, rows in _lines_in_order(pairs):
        if not book.untouched(li):
            continue
        if len(rows) == 1 and rows[0]["lines_for_item"] > 1:
            book.suggest(li, [rows[0]["item_idx"]], "several bank lines are one typo away from this item")
        elif len(rows) > 1:
            book.suggest(li, sorted(r["item_idx"] for r in rows), "a reference with a typo fits several items")
        elif rows[0]["strength"] == 2 or rows[0]["partner_ok"]:
            book.settle(li, [rows[0]["item_idx"]], "fuzzy", 0.85)


def _partner_pairs(book: _Book, with_amount: bool) -> pl.DataFrame:
    """(line, item) pairs from the same partner (IBAN, name, name prefix, or the same words
    in another order); with_amount also requires the line to equal what is still open."""
    lines = book.lines.join(book.open_lines().to_frame(), on="line_idx").select(
        "line_idx", "currency", "iban", "name_sorted", "name6", "name12", pl.col("cents").alias("amount"))
    items = book.items.with_columns(book.item_rem_series().alias("amount")).filter(pl.col("amount") != 0).select(
        "item_idx", "currency", "iban", "name_sorted", "name6", "name12", "amount")
    frames = []
    for column in ("iban", "name_sorted", "name6", "name12"):
        left = lines.filter(pl.col(column).is_not_null() & (pl.col(column) != ""))
        right = items.filter(pl.col(column).is_not_null() & (pl.col(column) != ""))
        if with_amount:
            frames.append(left.join(right, on=["currency", column, "amount"]).select("line_idx", "item_idx"))
            continue
        # very common names would explode the join, and cannot decide anything
        crowded = right.group_by("currency", column).len().filter(pl.col("len") > book.rules.subset_max_items * 4)
        right = right.join(crowded, on=["currency", column], how="anti")
        joined = left.join(right, on=["currency", column], suffix="_item").filter(  # a part is smaller than the whole
            (pl.col("amount").sign() == pl.col("amount_item").sign())
            & (pl.col("amount_item").abs() < pl.col("amount").abs()))
        frames.append(joined.select("line_idx", "item_idx"))
    return pl.concat(frames).unique()


def _amount_partner(book: _Book) -> None:
    """Rule 6: exactly the open amount, from a partner recognised by IBAN or name, within
    the date window. Several such items, or several such lines, make suggestions."""
    pairs = _usable(book, _partner_pairs(book, with_amount=True), report_currency=False)
    pairs = pairs.filter(pl.col("partner_ok") & pl.col("in_window") & (pl.col("rem") == pl.col("line_rem")))
    if pairs.is_empty():
        return
    pairs = pairs.with_columns(pl.len().over("item_idx").alias("lines_for_item"))
    for li, rows in _lines_in_order(pairs):
        if not book.untouched(li):
            continue
        if len(rows) == 1 and rows[0]["lines_for_item"] == 1:
            row = rows[0]
            book.apply(li, row["item_idx"], row["rem"], "amount_partner", 0.9 if row["iban_eq"] else 0.85)
        else:
            why = ("same amount from the same partner: several open items" if len(rows) > 1
                   else "several bank lines fit this item")
            book.suggest(li, sorted(r["item_idx"] for r in rows), why)


def _subset_sum(book: _Book) -> None:
    """Rule 7: one transfer paying several items of one partner: the only combination of
    that partner's open items (in the date window) that adds up to the line exactly."""
    pairs = _partner_pairs(book, with_amount=False)
    counts = pairs.group_by("line_idx").len()
    pairs = pairs.join(counts.filter(pl.col("len") >= 2), on="line_idx", how="semi")
    pairs = _usable(book, pairs, report_currency=False).filter(pl.col("partner_ok") & pl.col("in_window"))
    rules = book.rules
    found: dict[int, list[list[int]]] = {}
    for li, rows in _lines_in_order(pairs):
        if not book.untouched(li):
            continue
        candidates = [(r["item_idx"], book.item_rem[r["item_idx"]]) for r in rows if book.item_rem[r["item_idx"]]]
        candidates = [(ii, cents) for ii, cents in candidates if _sign(cents) == _sign(book.line_rem[li])]
        if len(candidates) < 2 or len(candidates) > rules.subset_max_items:
            continue
        solutions = _subsets(candidates, book.line_rem[li], rules.subset_max_size, rules.subset_budget)
        if solutions:
            found[li] = solutions
    # an item that two lines' only combinations both need belongs to neither for sure
    claims: dict[int, int] = {}
    for solutions in found.values():
        for ii in {ii for s in solutions for ii in s}:
            claims[ii] = claims.get(ii, 0) + 1
    for li, solutions in found.items():
        alternatives = sorted({ii for s in solutions for ii in s})
        if len(solutions) == 1 and all(claims[ii] == 1 for ii in solutions[0]):
            for ii in solutions[0]:
                book.apply(li, ii, book.item_rem[ii], "many_to_one", 0.8)
        elif len(solutions) > 1:
            book.suggest(li, alternatives, f"{len(solutions)} combinations of this partner's items add up")
        else:
            book.suggest(li, alternatives, "another bank line adds up to the same items")


def _subsets(candidates: list[tuple[int, int]], target: int, max_size: int, budget: int) -> list[list[int]] | None:
    """Up to two subsets (2..max_size items) whose amounts sum to target; None when the
    search ran out of budget (too many near-equal amounts to be sure of anything)."""
    sign = _sign(target)
    values = sorted(((abs(c), ii) for ii, c in candidates), reverse=True)
    goal = abs(target) if sign else 0
    suffix = [0] * (len(values) + 1)
    for i in range(len(values) - 1, -1, -1):
        suffix[i] = suffix[i + 1] + values[i][0]
    found: list[list[int]] = []
    steps = 0

    def walk(start: int, left: int, chosen: list[int]) -> bool:
        nonlocal steps
        for i in range(start, len(values)):
            steps += 1
            if steps > budget:
                return False
            value, ii = values[i]
            if value > left:
                continue
            if suffix[i] < left:
                return True
            if value == left:
                if len(chosen) >= 1:
                    found.append(sorted([*chosen, ii]))
                    if len(found) > 1:
                        return True
                continue
            if len(chosen) + 1 < max_size and not walk(i + 1, left - value, [*chosen, ii]):
                return False
            if len(found) > 1:
                return True
        return True

    if not walk(0, goal, []):
        return None
    return found


def _suggest_by_amount(book: _Book) -> None:
    """What is left: lines with a few open items of exactly their amount in the window
    become suggestions for a person to review (never matches)."""
    lines = book.lines.join(book.open_lines().to_frame(), on="line_idx").select(
        "line_idx", "currency", pl.col("cents").alias("amount"))
    items = book.items.with_columns(book.item_rem_series().alias("amount")).filter(pl.col("amount") != 0)
    crowded = items.group_by("currency", "amount").len().filter(pl.col("len") > book.rules.suggest_max * 4)
    items = items.join(crowded, on=["currency", "amount"], how="anti").select("item_idx", "currency", "amount")
    pairs = _usable(book, lines.join(items, on=["currency", "amount"]).select("line_idx", "item_idx"),
                    report_currency=False, slow_names=False).filter(pl.col("in_window"))
    for li, rows in _lines_in_order(pairs):
        if book.untouched(li) and li not in book.suggestions:
            book.suggest(li, sorted(r["item_idx"] for r in rows), "same amount, no reference or known partner")


# --------------------------------------------------------------------------- entry point

def reconcile(
    bank: pl.DataFrame,
    items: pl.DataFrame,
    rules: Rules | None = None,
    *,
    confirmed: pl.DataFrame | None = None,
    rejected: pl.DataFrame | None = None,
    settled: pl.DataFrame | None = None,
    as_of: date | None = None,
) -> Reconciliation:
    """Match ``bank`` (BankLine rows) against ``items`` (OpenItem rows, amount_open being
    what is still open). ``confirmed`` (bank_line_id, item_id[, amount_applied]) are a
    person's matches, applied first; ``rejected`` (bank_line_id, item_id) pairs are never
    matched or suggested. ``settled`` (OpenItem rows, amount_open as issued) are items paid
    in earlier runs: nothing is applied to them, but a line naming one is a double payment
    rather than a typo of another item. ``as_of`` dates the age of what stays open
    (default: the latest booking date)."""
    rules = rules or Rules()
    lines = _prepare_lines(bank)
    paid_before: set[str] = set()
    if settled is not None and settled.height:
        paid_before = set(settled["item_id"].to_list())
        items = pl.concat([items, settled.select(items.columns)])
    its = _prepare_items(items)
    line_ix = dict(zip(lines["bank_line_id"].to_list(), lines["line_idx"].to_list()))
    item_ix = dict(zip(its["item_id"].to_list(), its["item_idx"].to_list()))
    rejected_pairs = set()
    if rejected is not None:
        for b, i in rejected.select("bank_line_id", "item_id").iter_rows():
            if b in line_ix and i in item_ix:
                rejected_pairs.add((line_ix[b], item_ix[i]))
    book = _Book(lines, its, rules, rejected_pairs)
    book.paid_before = {item_ix[i] for i in paid_before}
    for ii in book.paid_before:
        book.item_rem[ii] = 0
    if confirmed is not None and confirmed.height:
        _manual(book, _confirmations(confirmed, line_ix, item_ix, book))

    if lines.is_empty() or its.is_empty():
        return _outcome(book, as_of)
    doc_keys = K.document_keys(its)
    text_keys = K.text_keys(lines.join(book.open_lines().to_frame(), on="line_idx").select("line_idx", "text"))
    _structured(book)
    _payouts(book)
    _document_numbers(book, text_keys, doc_keys)
    _double_payments(book, text_keys, doc_keys)
    _fuzzy(book, doc_keys, text_keys)
    _amount_partner(book)
    _subset_sum(book)
    _suggest_by_amount(book)
    return _outcome(book, as_of)


def _confirmations(confirmed: pl.DataFrame, line_ix: dict, item_ix: dict, book: _Book) -> list:
    out = []
    has_amount = "amount_applied" in confirmed.columns
    for row in confirmed.iter_rows(named=True):
        li, ii = line_ix.get(row["bank_line_id"]), item_ix.get(row["item_id"])
        if li is None or ii is None:
            continue  # settled or gone since the decision: nothing left to apply
        cents = None
        if has_amount and row["amount_applied"] is not None:
            cents = int(Decimal(row["amount_applied"]) * 100)
        out.append((li, ii, cents))
    return out


def _outcome(book: _Book, as_of: date | None) -> Reconciliation:
    lines, items = book.lines, book.items
    line_ids = lines["bank_line_id"]
    item_ids = items["item_id"]
    pairs = list(book.rows)
    values = list(book.rows.values())
    rows = pl.DataFrame({
        "li": pl.Series([li for li, _ in pairs], dtype=pl.Int64),
        "ii": pl.Series([ii for _, ii in pairs], dtype=pl.Int64),
        "cents": pl.Series([v[0] for v in values], dtype=pl.Int64),
        "rule": pl.Series([v[1] for v in values], dtype=pl.String),
        "confidence": pl.Series([v[2] for v in values], dtype=pl.Float64),
        "reason": pl.Series([v[3] for v in values], dtype=pl.String),
    })
    matches = rows.select(
        line_ids.gather(pl.Series(rows["li"])).alias("bank_line_id") if rows.height else pl.lit(None, pl.String)
        .alias("bank_line_id"),
        _item_ids(item_ids, rows["ii"]).alias("item_id"),
        from_cents(pl.col("cents")).alias("amount_applied"), "rule", "confidence", "reason",
    ).sort("bank_line_id", "item_id", nulls_last=True)

    touched_lines = {li for li, _ in pairs}
    touched_items = {ii for _, ii in pairs if ii != NO_ITEM}
    line_list, item_list = line_ids.to_list(), item_ids.to_list()
    unmatched_lines = sorted(line_list[li] for li in range(len(line_list)) if li not in touched_lines)
    unmatched_items = sorted(item_list[ii] for ii in range(len(item_list))
                             if ii not in touched_items and ii not in book.paid_before)
    explained = {d[1] for d in book.discrepancies if d[0] in ("double_payment", "currency_mismatch")}
    amounts = book.line_amount
    noted = {d[1] for d in book.discrepancies if d[0] in ("overpayment", "partial_payment", "write_off")}
    for li in sorted(touched_lines):
        if book.line_rem[li] != 0 and li not in noted:
            book.note("unapplied_rest", li, NO_ITEM, book.line_rem[li], f"{_money(book.line_rem[li])} not applied")
    for li in range(len(line_list)):
        if li not in touched_lines and li not in book.suggestions and li not in explained:
            book.note("unmatched_line", li, NO_ITEM, amounts[li], "no open item fits")
    suggestions = [
        Suggestion(line_list[li], tuple(sorted(item_list[ii] for ii in candidates)), why)
        for li, (candidates, why) in sorted(book.suggestions.items(), key=lambda kv: line_list[kv[0]])
        if li not in touched_lines
    ]
    discrepancies = _discrepancy_frame(book, line_ids, item_ids, as_of)
    by_rule = dict(sorted(matches.group_by("rule").len().iter_rows())) if matches.height else {}
    return Reconciliation(
        matches=matches,
        suggestions=suggestions,
        discrepancies=discrepancies,
        unmatched_lines=unmatched_lines,
        unmatched_items=unmatched_items,
        bank_lines=len(line_ids),
        items=len(item_ids) - len(book.paid_before),
        matched_items=len(touched_items),
        by_rule=by_rule,
    )


def _item_ids(item_ids: pl.Series, index: pl.Series) -> pl.Series:
    """Item ids at ``index`` (null where the index is NO_ITEM: write-offs, line-only problems)."""
    if item_ids.is_empty() or index.is_empty():
        return pl.Series([None] * index.len(), dtype=pl.String)
    found = item_ids.gather(index.clip(lower_bound=0))
    return pl.select(pl.when(index >= 0).then(found)).to_series()


def _discrepancy_frame(book: _Book, line_ids: pl.Series, item_ids: pl.Series, as_of: date | None) -> pl.DataFrame:
    notes = book.discrepancies
    frame = pl.DataFrame({
        "kind": pl.Series([d[0] for d in notes], dtype=pl.String),
        "li": pl.Series([d[1] for d in notes], dtype=pl.Int64),
        "ii": pl.Series([d[2] for d in notes], dtype=pl.Int64),
        "cents": pl.Series([d[3] for d in notes], dtype=pl.Int64),
        "detail": pl.Series([d[4] for d in notes], dtype=pl.String),
    }).unique(subset=["kind", "li", "ii"], keep="first", maintain_order=True)
    if frame.is_empty():
        return pl.DataFrame(schema={"kind": pl.String, "bank_line_id": pl.String, "item_id": pl.String,
                                    "amount": MONEY_DTYPE, "detail": pl.String})
    return frame.select(
        "kind",
        line_ids.gather(frame["li"]).alias("bank_line_id"),
        _item_ids(item_ids, frame["ii"]).alias("item_id"),
        from_cents(pl.col("cents")).alias("amount"),
        "detail",
    ).sort("kind", "bank_line_id", "item_id", nulls_last=True)
