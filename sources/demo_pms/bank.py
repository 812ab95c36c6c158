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


OPENING_BALANCE = Decimal("48250.00")  # the demo account's balance before the generated history


def balance_before(rows: list[dict], day: date) -> Decimal:
    return OPENING_BALANCE + sum((Decimal(r["amount"]) for r in rows if r["booking_date"] < day.isoformat()),
                                 Decimal(0))


def camt053_statement(rows: list[dict], day: date) -> bytes:
    """The bank's camt.053.001.08 end-of-day statement of ``day``, the way French banks send it
    (one ``Stmt``, ``OPBD``/``CLBD`` balances, one ``Ntry`` per booking with its ``TxDtls``)."""
    from xml.sax.saxutils import escape

    booked = [r for r in rows if r["booking_date"] == day.isoformat()]
    opening = balance_before(rows, day)
    closing = opening + sum((Decimal(r["amount"]) for r in booked), Decimal(0))

    def balance(code: str, amount: Decimal) -> str:
        return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"EUR\">{abs(amount):.2f}</Amt>"
                f"<CdtDbtInd>{'DBIT' if amount < 0 else 'CRDT'}</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>")

    entries = []
    for number, row in enumerate(booked, 1):
        amount = Decimal(row["amount"])
        side, party = ("CRDT", "Dbtr") if amount > 0 else ("DBIT", "Cdtr")
        name = f"<{party}><Pty><Nm>{escape(row['counterparty_name'])}</Nm></Pty></{party}>" \
            if row.get("counterparty_name") else ""
        account = f"<{party}Acct><Id><IBAN>{row['counterparty_iban']}</IBAN></Id></{party}Acct>" \
            if row.get("counterparty_iban") else ""
        entries.append(
            f"<Ntry><NtryRef>{number}</NtryRef><Amt Ccy=\"EUR\">{abs(amount):.2f}</Amt><CdtDbtInd>{side}</CdtDbtInd>"
            f"<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{day}</Dt></BookgDt><ValDt><Dt>{row['value_date']}</Dt></ValDt>"
            f"<AcctSvcrRef>{day:%Y%m%d}{number:05d}</AcctSvcrRef>"
            f"<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{'RCDT' if amount > 0 else 'ICDT'}</Cd>"
            f"<SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>"
            f"<NtryDtls><TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>"
            f"<RltdPties>{name}{account}</RltdPties>"
            f"<RmtInf><Ustrd>{escape(row['remittance_info'] or '')}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>DEMO{day:%Y%m%d}</MsgId><CreDtTm>{day}T23:30:00+01:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>{day:%Y%m%d}-1</Id><ElctrncSeqNb>{day.toordinal() - date(2026, 1, 1).toordinal() + 1}"
        f"</ElctrncSeqNb><CreDtTm>{day}T23:30:00+01:00</CreDtTm>"
        f"<Acct><Id><IBAN>{OUR_IBAN}</IBAN></Id><Ccy>EUR</Ccy></Acct>"
        f"{balance('OPBD', opening)}{balance('CLBD', closing)}"
        f"<TxsSummry><TtlNtries><NbOfNtries>{len(booked)}</NbOfNtries></TtlNtries></TxsSummry>"
        + "".join(entries) + "</Stmt></BkToCstmrStmt></Document>\n"
    ).encode("utf-8")
