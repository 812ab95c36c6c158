"""The demo hotel's bank statement and open-items export, derived from its PMS payments.

Companies on the city ledger receive an invoice at check-out and pay it by transfer
some days later (usually quoting the invoice number, sometimes not, sometimes short of
a bank charge, sometimes not yet); the card acquirer pays each day's card takings two
days later, net of its commission; salaries, social charges and a supplier bill go out.
Deterministic: the same window gives the same rows. Files follow BANK.csv and
ITEMS.csv of INTERFACES §1, the way a bank export and the PMS's receivables export
would reach the reconciliation inbox.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sources.demo_pms.generator import COMPANIES, HotelSpec, current, generate

OUR_IBAN = "FR7630006000011234567890189"
CARD_FEE = Decimal("0.012")  # the acquirer's commission on card takings
COMPANY_IBANS = {cid: f"FR76{10000 + n * 7919:05d}{n:05d}{cid:0>11}{n * 13 % 97:02d}"
                 for n, (cid, _) in enumerate(COMPANIES, 1)}
SUPPLIER = ("S001", "Savoie Blanchisserie SAS", "FR7610278089000002083640163")


def _bank_name(name: str) -> str:
    """A name the way a bank prints it: upper case, no accents, cut at 18 characters."""
    import unicodedata

    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return plain.upper()[:18].strip()


def _local_day(posted_at: str, tz: ZoneInfo) -> date:
    return datetime.fromisoformat(posted_at.replace("Z", "+00:00")).astimezone(tz).date()


def demo_bank_rows(spec: HotelSpec, start: date, end: date) -> tuple[list[dict], list[dict]]:
    """(bank lines booked in [start, end], items issued up to ``end``). Items carry ``paid_on``
    (the booking date of the line that pays them, or None): not a column of ITEMS.csv, but what
    lets an export of *open* items leave out what was paid before a given day."""
    tz = ZoneInfo(spec.timezone)
    _, payments = generate(spec)
    items: list[dict] = []
    lines: list[dict] = []
    card_days: dict[date, Decimal] = {}
    for record in payments:
        payment = current(record)
        if payment["status"] != "posted":
            continue
        day = _local_day(payment["posted_at"], tz)
        amount = Decimal(payment["amount"])
        if payment["method"] == "CARD" and payment["kind"] == "payment":
            card_days[day] = card_days.get(day, Decimal(0)) + amount
        elif payment["method"] == "CITY_LEDGER" and amount > 0 and day <= end:
            items.append(_invoice(payment, day))
    for item in items:
        paid = _company_payment(item, start, end)
        item["paid_on"] = paid[0]["booking_date"] if paid else None
        lines += paid
    for day, total in sorted(card_days.items()):
        if day > end or total <= 0:
            continue
        items.append({"item_id": f"CB-{day:%Y%m%d}", "kind": "payout", "document_number": f"CB{day:%Y%m%d}",
                      "issue_date": day.isoformat(), "due_date": (day + timedelta(days=2)).isoformat(),
                      "amount_open": f"{total:.2f}", "currency": spec.currency,
                      "partner_name": "Monext (cartes bancaires)",
                      "paid_on": (day + timedelta(days=2)).isoformat()})
        paid = day + timedelta(days=2)
        if start <= paid <= end:
            fee = (total * CARD_FEE).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            lines.append(_line(paid, total - fee, "MONEXT SAS", None, f"REMISE CB {day:%d%m%Y} CB{day:%Y%m%d}"))
    lines += _outgoing(start, end, items)
    lines.sort(key=lambda r: (r["booking_date"], r["amount"], r["remittance_info"]))
    numbered: dict[str, int] = {}
    for row in lines:
        numbered[row["booking_date"]] = numbered.get(row["booking_date"], 0) + 1
        row["bank_line_id"] = f"BQ-{row['booking_date'].replace('-', '')}-{numbered[row['booking_date']]:03d}"
    items.sort(key=lambda r: (r["issue_date"], r["item_id"]))
    return lines, items


def _invoice(payment: dict, day: date) -> dict:
    company = payment["company_id"]
    return {"item_id": f"INV-{payment['id']}", "kind": "invoice", "document_number": f"FA-{payment['reference'][3:]}",
            "issue_date": day.isoformat(), "due_date": (day + timedelta(days=30)).isoformat(),
            "amount_open": payment["amount"], "currency": payment["currency"], "partner_name": payment["company_name"],
            "partner_iban": COMPANY_IBANS.get(company), "partner_id": company}


def _company_payment(item: dict, start: date, end: date) -> list[dict]:
    rng = random.Random(f"ledgerflow-demo-bank:{item['item_id']}")
    paid = date.fromisoformat(item["issue_date"]) + timedelta(days=rng.randint(4, 40))
    style = rng.random()
    if paid > end or style < 0.08:  # not paid (yet)
        return []
    amount = Decimal(item["amount_open"])
    name, iban, doc = _bank_name(item["partner_name"]), item["partner_iban"], item["document_number"]
    if style < 0.60:
        text = rng.choice([f"VIR SEPA FACTURE {doc}", f"Facture {doc.lower()}", f"REGLEMENT FACT {doc.replace('-', ' ')}",
                           f"{doc[3:]} HOTEL DU LAC"])
        return [_line(paid, amount, name, iban, text)]
    if style < 0.78:
        return [_line(paid, amount, name, iban, "VIREMENT HOTEL DU LAC")]
    if style < 0.90:
        charge = Decimal("8.50")  # the payer's bank took its charge from the transfer
        return [_line(paid, amount - charge, name, iban, f"PAIEMENT {doc} FRAIS A VOTRE CHARGE")]
    return [_line(paid, amount, name, None, f"ORDRE {name} REF CLIENT {rng.randint(10000, 99999)}")]


def _outgoing(start: date, end: date, items: list[dict]) -> list[dict]:
    """Salaries, social charges and a supplier bill: money out that the reconciliation must
    leave alone, or match against the bill."""
    rows = []
    day = start
    while day <= end:
        if day.day == 28:
            rows.append(_line(day, Decimal("-48210.55"), "PERSONNEL", None, f"SALAIRES {day:%m/%Y}"))
        if day.day == 15:
            rows.append(_line(day, Decimal("-19644.10"), "URSSAF RHONE ALPES", None, f"COTISATIONS {day:%m/%Y}"))
        if day.day == 10:
            number = f"BL-{day:%Y%m}"
            amount = Decimal("1865.40")
            items.append({"item_id": f"BILL-{number}", "kind": "bill", "document_number": number,
                          "issue_date": (day - timedelta(days=20)).isoformat(),
                          "due_date": day.isoformat(), "amount_open": f"{-amount:.2f}", "currency": "EUR",
                          "partner_name": SUPPLIER[1], "partner_iban": SUPPLIER[2], "partner_id": SUPPLIER[0],
                          "paid_on": day.isoformat()})
            rows.append(_line(day, -amount, _bank_name(SUPPLIER[1]), SUPPLIER[2], f"PRLV SEPA {number}"))
        day += timedelta(days=1)
    return rows


def _line(day: date, amount: Decimal, name: str | None, iban: str | None, text: str) -> dict:
    return {"bank_line_id": "", "bank_account": OUR_IBAN, "booking_date": day.isoformat(),
            "value_date": day.isoformat(), "amount": f"{amount:.2f}", "currency": "EUR",
            "counterparty_name": name, "counterparty_iban": iban, "remittance_info": text, "structured_ref": None}
