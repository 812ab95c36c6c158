"""Statement files of any size, for the parser benchmarks (``statements parse``).

Plain functions that return the bytes of a valid, deterministic file: the same ``entries`` and
``seed`` always give the same bytes, and every statement's balances add up.

``generate_camt053(entries, seed)`` writes one camt.053.001.08 message with one ``Stmt`` per
booking day (at most ``STATEMENT_ENTRIES`` entries each), shaped like a real bank's export:
SEPA credits with a debtor, IBAN and RF creditor reference, debits with a creditor, card
payments, direct-debit returns marked as reversals, fees, and batch bookings whose
``TxDtls`` amounts add up to the entry.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from xml.sax.saxutils import escape

STATEMENT_ENTRIES = 10_000
CAMT053_NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
OUR_IBAN = "DE89370400440532013000"
FIRST_DAY = date(2025, 1, 2)

NAMES = ("Müller GmbH", "Hotel Zur Post KG", "Jansen & Zonen B.V.", "Dupont SARL", "ACME Supplies Ltd",
         "Schmidt, Anna", "Van den Berg Catering", "Stadtwerke Nord", "García Hermanos S.L.", "Nordic Linen AB",
         "Peeters Bvba", "Booking Services B.V.", "Kowalski Sp. z o.o.", "O'Brien Consulting")
COUNTRIES = ("DE", "NL", "BE", "FR", "AT")
IBAN_LENGTHS = {"DE": 18, "NL": 14, "BE": 12, "FR": 23, "AT": 16}


def iban(country: str, rng: random.Random) -> str:
    """A random IBAN with correct check digits (ISO 13616 mod 97), digits-only BBAN."""
    bban = "".join(rng.choice("0123456789") for _ in range(IBAN_LENGTHS[country]))
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


def rf_reference(body: str) -> str:
    """An ISO 11649 creditor reference ``RFnn<body>``."""
    digits = "".join(str(int(c, 36)) for c in body + "RF00")
    return f"RF{98 - int(digits) % 97:02d}{body}"


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _party(role: str, name: str, account: str) -> str:
    return (f"<{role}><Pty><Nm>{escape(name)}</Nm></Pty></{role}>"
            f"<{role}Acct><Id><IBAN>{account}</IBAN></Id></{role}Acct>")


def _details(rng: random.Random, payer: bool, cents: int | None, number: int) -> str:
    """One TxDtls: references, amount, the other party (the payer ``Dbtr`` or the payee ``Cdtr``),
    remittance text or a structured reference."""
    name = rng.choice(NAMES)
    account = iban(rng.choice(COUNTRIES), rng)
    party = _party("Dbtr", name, account) if payer else _party("Cdtr", name, account)
    amount = f"<Amt Ccy=\"EUR\">{_money(cents)}</Amt>" if cents is not None else ""
    if rng.random() < 0.4:
        remittance = (f"<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp>"
                      f"<Ref>{rf_reference(f'{number:09d}')}</Ref></CdtrRefInf></Strd>")
    else:
        remittance = f"<Ustrd>Invoice INV-{number:07d} customer {rng.randint(1000, 99999)}</Ustrd>"
    return (f"<TxDtls>\n<Refs><AcctSvcrRef>TX{number:012d}</AcctSvcrRef>"
            f"<EndToEndId>E2E-{number:010d}</EndToEndId></Refs>\n{amount}"
            f"<RltdPties>{party}</RltdPties>\n<RmtInf>{remittance}</RmtInf>\n</TxDtls>\n")


def _entry(rng: random.Random, day: date, number: int) -> tuple[int, str]:
    """(signed cents, Ntry XML) of one entry."""
    kind = rng.random()
    reversal = 0.96 <= kind < 0.98
    credit = kind < 0.45 or reversal
    batch = 0.91 <= kind < 0.96
    cents = rng.randint(100, 500_000)
    if batch:
        parts = [rng.randint(100, 200_000) for _ in range(rng.randint(2, 3))]
        cents = sum(parts)
        details = "".join(_details(rng, credit, p, number * 10 + i) for i, p in enumerate(parts))
        batch_xml = f"<Btch><NbOfTxs>{len(parts)}</NbOfTxs></Btch>\n"
        family = ("RCDT", "ESCT") if credit else ("ICDT", "ESCT")
    else:
        details = _details(rng, credit and not reversal, cents, number)  # a returned debit names its creditor
        batch_xml = ""
        family = (("RDDT", "UPDD") if reversal else ("RCDT", "ESCT")) if credit else (
            ("CCRD", "POSD") if kind > 0.75 else ("ICDT", "ESCT"))
    value_day = day - timedelta(days=rng.choice((0, 0, 0, 1, 2)))
    xml = (f"<Ntry>\n<NtryRef>{number}</NtryRef><Amt Ccy=\"EUR\">{_money(cents)}</Amt>"
           f"<CdtDbtInd>{'CRDT' if credit else 'DBIT'}</CdtDbtInd>"
           f"{'<RvslInd>true</RvslInd>' if reversal else ''}<Sts><Cd>BOOK</Cd></Sts>\n"
           f"<BookgDt><Dt>{day.isoformat()}</Dt></BookgDt><ValDt><Dt>{value_day.isoformat()}</Dt></ValDt>\n"
           f"<AcctSvcrRef>{day:%Y%m%d}{number:010d}</AcctSvcrRef>\n"
           f"<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{family[0]}</Cd><SubFmlyCd>{family[1]}</SubFmlyCd></Fmly>"
           f"</Domn></BkTxCd>\n<NtryDtls>\n{batch_xml}{details}</NtryDtls>\n</Ntry>\n")
    return (cents if credit else -cents), xml


def _statement(rng: random.Random, day: date, first: int, count: int, opening: int) -> tuple[int, list[str]]:
    """(closing cents, XML chunks) of one Stmt with ``count`` entries."""
    entries = []
    balance = opening
    for number in range(first, first + count):
        cents, xml = _entry(rng, day, number)
        balance += cents
        entries.append(xml)

    def bal(code: str, cents: int, when: date) -> str:
        sign = "CRDT" if cents >= 0 else "DBIT"
        return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"EUR\">{_money(abs(cents))}</Amt>"
                f"<CdtDbtInd>{sign}</CdtDbtInd><Dt><Dt>{when.isoformat()}</Dt></Dt></Bal>\n")

    head = (f"<Stmt>\n<Id>STMT-{day:%Y%m%d}</Id><ElctrncSeqNb>{(day - FIRST_DAY).days + 1}</ElctrncSeqNb>"
            f"<CreDtTm>{day.isoformat()}T22:00:00+01:00</CreDtTm>\n"
            f"<Acct><Id><IBAN>{OUR_IBAN}</IBAN></Id><Ccy>EUR</Ccy><Ownr><Nm>Hotel Example GmbH</Nm></Ownr></Acct>\n"
            + bal("OPBD", opening, day - timedelta(days=1)) + bal("CLBD", balance, day))
    return balance, [head, *entries, "</Stmt>\n"]


def generate_camt053(entries: int, seed: int = 0) -> bytes:
    """A camt.053.001.08 file with ``entries`` entries (UTF-8), deterministic for ``seed``."""
    rng = random.Random(seed)
    chunks = [f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"{CAMT053_NS}\">\n<BkToCstmrStmt>\n"
              f"<GrpHdr><MsgId>BENCH-{seed}-{entries}</MsgId><CreDtTm>2025-01-02T22:00:00</CreDtTm></GrpHdr>\n"]
    balance = 1_000_000_00
    day, first = FIRST_DAY, 1
    while first <= entries or first == 1:
        count = min(STATEMENT_ENTRIES, entries - first + 1)
        balance, statement = _statement(rng, day, first, count, balance)
        chunks.extend(statement)
        day += timedelta(days=1)
        first += max(count, 1)
    chunks.append("</BkToCstmrStmt>\n</Document>\n")
    return "".join(chunks).encode("utf-8")



# --------------------------------------------------------------------------- MT940 and CODA

MT940_ACCOUNT = "NL91ABNA0417164300"
CODA_ACCOUNT = "BE68539007547034"
CODA_STATEMENT_ENTRIES = 5_000  # CODA numbers movements with four digits


def _swift_amount(cents: int) -> str:
    return f"{abs(cents) // 100},{abs(cents) % 100:02d}"


def generate_mt940(entries: int, seed: int = 0) -> bytes:
    """MT940 in SWIFT blocks, one statement per day (at most ``STATEMENT_ENTRIES`` lines), with
    ING-style structured ``:86:`` (``/EREF/``, ``/CNTP/``, ``/REMI/``) and Windows-1252 names."""
    rng = random.Random(seed)
    balance, day, first, out = 250_000_00, FIRST_DAY, 1, []
    while first <= entries or first == 1:
        count = min(STATEMENT_ENTRIES, entries - first + 1)
        out.append("{1:F01INGBNL2AXXXX0000000000}{2:I940INGBNL2AXXXXN}{4:\r\n"
                   f":20:P{day:%y%m%d}000000001\r\n:25:{MT940_ACCOUNT}EUR\r\n:28C:{(day - FIRST_DAY).days + 1:05d}\r\n"
                   f":60F:{'C' if balance >= 0 else 'D'}{day:%y%m%d}EUR{_swift_amount(balance)}\r\n")
        for number in range(first, first + count):
            cents = rng.randint(100, 500_000) * (1 if rng.random() < 0.45 else -1)
            balance += cents
            name = rng.choice(NAMES)
            out.append(f":61:{day:%y%m%d}{day:%m%d}{'C' if cents > 0 else 'D'}{_swift_amount(cents)}NTRFEREF//"
                       f"{number:016d}\r\n/TRCD/00100/\r\n"
                       f":86:/EREF/E2E-{number:010d}//CNTP/{iban(rng.choice(COUNTRIES), rng)}/INGBNL2A/"
                       f"{name}///REMI/USTD//Invoice INV-{number:07d}/\r\n")
        out.append(f":62F:{'C' if balance >= 0 else 'D'}{day:%y%m%d}EUR{_swift_amount(balance)}\r\n-}}\r\n")
        day += timedelta(days=1)
        first += max(count, 1)
    return "".join(out).encode("cp1252")


def _coda_amount(cents: int) -> str:
    return f"{'1' if cents < 0 else '0'}{abs(cents) * 10:015d}"  # sign digit, then 12 + 3 decimals


def _ddmmyy(day: date) -> str:
    return f"{day:%d%m%y}"


def _ogm(rng: random.Random) -> str:
    """A Belgian structured communication: ten digits and their mod-97 check (97 for 0)."""
    digits = f"{rng.randint(0, 9_999_999_999):010d}"
    return f"{digits}{int(digits) % 97 or 97:02d}"


def generate_coda(entries: int, seed: int = 0) -> bytes:
    """CODA 2 with one statement per day (records 0, 1, 2.1/2.2/2.3 per movement, 8, 9); a third
    of the movements carry a Belgian structured communication (OGM), the rest free text."""
    rng = random.Random(seed)
    balance, day, first, records = 75_000_00, FIRST_DAY, 1, []
    account = CODA_ACCOUNT.ljust(34) + "EUR"
    while first <= entries or first == 1:
        count = min(CODA_STATEMENT_ENTRIES, entries - first + 1)
        paper = (day - FIRST_DAY).days % 999 + 1
        records.append("0" + "0000" + _ddmmyy(day) + "300" + "05" + " " * 8 + f"{paper:010d}"
                       + "Hotel Example BV".ljust(26) + "GKCCBEBB".ljust(11) + "00477472701" + " " + "00000"
                       + " " * 39 + "2")
        records.append("1" + "2" + f"{paper:03d}" + account + _coda_amount(balance) + _ddmmyy(day)
                       + "Hotel Example BV".ljust(26) + "Current account".ljust(35) + f"{paper:03d}")
        debit = credit = 0
        for sequence in range(1, count + 1):
            number = first + sequence - 1
            cents = rng.randint(100, 500_000) * (1 if rng.random() < 0.45 else -1)
            balance += cents
            debit, credit = (debit - cents, credit) if cents < 0 else (debit, credit + cents)
            communication = ("1" + ("101" + _ogm(rng)).ljust(53)) if rng.random() < 0.33 else (
                "0" + f"Invoice INV-{number:07d}".ljust(53))
            records.append("21" + f"{sequence:04d}" + "0000" + f"REF{number:017d}".ljust(21) + _coda_amount(cents)
                           + _ddmmyy(day) + "00150000" + communication + _ddmmyy(day) + f"{paper:03d}" + "0" + "1"
                           + " " + "0")
            records.append("22" + f"{sequence:04d}" + "0000" + " " * 53 + f"E2E-{number:010d}".ljust(35)
                           + "GEBABEBB".ljust(11) + " " * 3 + " " + " " * 12 + "1" + " " + "0")
            name = rng.choice(NAMES).encode("latin-1", "replace").decode("latin-1")
            records.append("23" + f"{sequence:04d}" + "0000" + iban(rng.choice(COUNTRIES), rng).ljust(34) + "EUR"
                           + name[:35].ljust(35) + " " * 43 + "0" + " " + "0")
        records.append("8" + f"{paper:03d}" + account + _coda_amount(balance) + _ddmmyy(day) + " " * 64 + "0")
        records.append("9" + " " * 15 + f"{3 * count + 2:06d}" + f"{debit * 10:015d}{credit * 10:015d}" + " " * 75
                       + "2")
        day += timedelta(days=1)
        first += max(count, 1)
    assert all(len(r) == 128 for r in records), sorted({len(r) for r in records})
    return ("\r\n".join(records) + "\r\n").encode("latin-1")
