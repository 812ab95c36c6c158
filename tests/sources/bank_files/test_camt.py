"""ISO 20022 camt.053 / camt.054: sources.bank_files.camt on the genuine samples and on files the
tests write themselves (a small builder below; no third-party sample is copied)."""

from __future__ import annotations

import json
import re
import threading
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.statement_data import generate_camt053
from sources.bank_files import camt
from sources.bank_files.camt import identify_camt053, identify_camt054, parse_camt053, parse_camt054
from sources.bank_files.formats import detect
from sources.bank_files.model import StatementError

OURS = "DE89370400440532013000"
THEIRS = "NL91ABNA0417164300"
NS = "urn:iso:std:iso:20022:tech:xsd:camt.{}.001.{:02d}"


# ---------------------------------------------------------------- a small camt writer


def document(*reports: str, kind: str = "053", version: int = 2, namespace: str | None = None) -> bytes:
    """A camt message with the given Stmt/Ntfctn blocks, one element per line."""
    message = {"053": "BkToCstmrStmt", "054": "BkToCstmrDbtCdtNtfctn", "052": "BkToCstmrAcctRpt"}[kind]
    xmlns = NS.format(kind, version) if namespace is None else namespace
    declaration = f' xmlns="{xmlns}"' if xmlns else ""
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<Document{declaration}>",
        f"<{message}>",
        "<GrpHdr><MsgId>MSG-1</MsgId><CreDtTm>2026-03-02T20:00:00</CreDtTm></GrpHdr>",
        *reports,
        f"</{message}>",
        "</Document>",
    ]).encode("utf-8") + b"\n"


def balance(code: str, amount: str, indicator: str | None = "CRDT", day: str = "2026-03-02") -> str:
    sign = f"<CdtDbtInd>{indicator}</CdtDbtInd>" if indicator else ""
    return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"EUR\">{amount}</Amt>{sign}"
            f"<Dt><Dt>{day}</Dt></Dt></Bal>")


def statement(*entries: str, opening: str = "100.00", closing: str = "90.00", ident: str = "STMT-1",
              account: str = f"<IBAN>{OURS}</IBAN>", currency: str | None = "EUR", balances: str | None = None) -> str:
    """A Stmt; by default its balances fit one debit of 10.00."""
    ccy = f"<Ccy>{currency}</Ccy>" if currency else ""
    if balances is None:
        balances = balance("OPBD", opening, day="2026-03-01") + "\n" + balance("CLBD", closing)
    return "\n".join([f"<Stmt>\n<Id>{ident}</Id>", f"<Acct><Id>{account}</Id>{ccy}</Acct>", balances, *entries,
                      "</Stmt>"])


def notification(*entries: str, ident: str = "NTF-1", account: str = f"<IBAN>{OURS}</IBAN>") -> str:
    return "\n".join([f"<Ntfctn>\n<Id>{ident}</Id>", "<CreDtTm>2026-03-02T18:00:00</CreDtTm>",
                      f"<Acct><Id>{account}</Id></Acct>", *entries, "</Ntfctn>"])


def entry(amount: str = "10.00", indicator: str = "DBIT", *, details: str = "", head: str = "",
          booked: str | None = "<Dt>2026-03-02</Dt>", value: str | None = "<Dt>2026-03-01</Dt>",
          reference: str = "<AcctSvcrRef>BANKREF-1</AcctSvcrRef>",
          code: str = "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn>"
                      "</BkTxCd>", tail: str = "", currency: str = "EUR") -> str:
    """An Ntry, one child per line; ``details`` goes into NtryDtls, ``tail`` after it."""
    parts = ["<Ntry>", "<NtryRef>NTRY-1</NtryRef>", f'<Amt Ccy="{currency}">{amount}</Amt>',
             f"<CdtDbtInd>{indicator}</CdtDbtInd>", head, "<Sts>BOOK</Sts>",
             f"<BookgDt>{booked}</BookgDt>" if booked else "", f"<ValDt>{value}</ValDt>" if value else "",
             reference, code, f"<NtryDtls>\n{details}\n</NtryDtls>" if details else "", tail, "</Ntry>"]
    return "\n".join(p for p in parts if p)


def transaction(*, party: str = "Cdtr", name: str = "Supplier GmbH", iban: str = THEIRS, ustrd: tuple = ("INV-1",),
                e2e: str = "E2E-1", more: str = "", amount: str = "") -> str:
    """A TxDtls naming one party and its account."""
    party_xml = (f"<RltdPties><{party}><Nm>{name}</Nm></{party}>"
                 f"<{party}Acct><Id><IBAN>{iban}</IBAN></Id></{party}Acct></RltdPties>") if party else ""
    remittance = "".join(f"<Ustrd>{text}</Ustrd>" for text in ustrd)
    return "\n".join(p for p in [
        "<TxDtls>", f"<Refs><EndToEndId>{e2e}</EndToEndId></Refs>" if e2e else "", amount, party_xml,
        f"<RmtInf>{remittance}</RmtInf>" if remittance else "", more, "</TxDtls>"] if p)


def only(data: bytes, parse=parse_camt053):
    (result,) = parse(data, "t.xml")
    return result


def only_entry(data: bytes, parse=parse_camt053):
    (result,) = only(data, parse).entries
    return result


def refused(data: bytes, parse=parse_camt053) -> StatementError:
    with pytest.raises(StatementError) as caught:
        parse(data, "t.xml")
    return caught.value


def line_of(data: bytes, needle: bytes) -> int:
    return data[:data.index(needle)].count(b"\n") + 1


# ---------------------------------------------------------------- the genuine samples


def samples(shared_dir, fmt: str):
    folder = shared_dir / "samples" / "bank" / fmt
    return sorted(p for p in folder.iterdir() if not p.name.endswith(".json"))


@pytest.mark.parametrize(("fmt", "parse"), [("camt053", parse_camt053), ("camt054", parse_camt054)])
def test_every_sample_matches_its_expected_statements(shared_dir, fmt, parse):
    for path in samples(shared_dir, fmt):
        expected = json.loads((path.parent / f"{path.name}.expected.json").read_text())["statements"]
        result = parse(path.read_bytes(), path.name)
        assert len(result) == len(expected), path.name
        for got, want in zip(result, expected, strict=True):
            assert re.sub(r"\W", "", got.account) == re.sub(r"\W", "", want["account"]), path.name
            assert got.currency == want["currency"], path.name
            for mine, theirs in ((got.opening_balance, want["opening_balance"]),
                                 (got.closing_balance, want["closing_balance"])):
                assert mine == (None if theirs is None else Decimal(theirs)), path.name
            assert len(got.entries) == want["entries"], path.name
            assert got.entries_sum() == Decimal(want["entries_sum"]), path.name
            for entry_, first in zip(got.entries, want["first_entries"]):
                assert entry_.amount == Decimal(first["amount"]), path.name
                if first["booking_date"]:
                    assert entry_.booking_date.isoformat() == first["booking_date"], path.name
                if first["structured_ref"]:
                    assert entry_.structured_ref == first["structured_ref"], path.name


def test_every_camt053_sample_balances(shared_dir):
    assert all(s.balance_check() for p in samples(shared_dir, "camt053") for s in parse_camt053(p.read_bytes(), "x"))


def test_samples_are_identified_as_their_own_message(shared_dir):
    assert all(identify_camt053(p.read_bytes()[:4096]) and not identify_camt054(p.read_bytes()[:4096])
               for p in samples(shared_dir, "camt053"))
    assert all(identify_camt054(p.read_bytes()[:4096]) and not identify_camt053(p.read_bytes()[:4096])
               for p in samples(shared_dir, "camt054"))


def test_no_other_format_sample_is_identified_as_camt(shared_dir):
    bank = shared_dir / "samples" / "bank"
    others = [p for fmt in ("coda", "mt940", "ofx") for p in samples(shared_dir, fmt)]
    others += [p for p in (bank / "broken").iterdir() if "camt" not in p.name]
    assert others
    assert not any(identify_camt053(p.read_bytes()[:4096]) or identify_camt054(p.read_bytes()[:4096])
                   for p in others)


def test_truncated_sample_is_refused_naming_its_last_line(shared_dir):
    data = (shared_dir / "samples" / "bank" / "broken" / "truncated_camt053_valid_example.xml").read_bytes()
    error = refused(data)
    assert error.line == data.count(b"\n") + 1
    assert "not well-formed XML" in error.message and "truncated" in error.message


def test_latin1_bytes_in_a_file_declaring_utf8_are_an_encoding_error_naming_the_line(shared_dir):
    data = (shared_dir / "samples" / "bank" / "broken" / "bad_encoding_camt053_latin1_declared_utf8.xml").read_bytes()
    error = refused(data)
    assert error.line == 156
    assert "0xDC" in error.message and "UTF-8" in error.message


def test_wrong_balance_sample_parses_and_fails_its_balance_check(shared_dir):
    data = (shared_dir / "samples" / "bank" / "broken" / "wrong_balance_camt053_oca_test-camt053.xml").read_bytes()
    (result,) = parse_camt053(data, "x")
    assert result.entries_sum() == Decimal("-12.99")
    assert result.balance_check() is False
    assert result.closing_line == line_of(data, b"<Cd>CLBD</Cd>") - 3


# ---------------------------------------------------------------- statements and balances


def test_debits_are_negative_and_credits_positive():
    result = only(document(statement(entry("25.00", "CRDT"), entry("35.00", "DBIT"))))
    assert [e.amount for e in result.entries] == [Decimal("25.00"), Decimal("-35.00")]


def test_amounts_keep_the_digits_as_written():
    assert only_entry(document(statement(entry("10"), closing="90"))).amount.as_tuple().exponent == 0


def test_opening_is_opbd_and_closing_is_clbd_whatever_their_order():
    balances = balance("CLBD", "90.00") + balance("CLAV", "1.00") + balance("OPBD", "100.00")
    result = only(document(statement(entry(), balances=balances)))
    assert (result.opening_balance, result.closing_balance) == (Decimal("100.00"), Decimal("90.00"))
    assert result.balance_check() is True


def test_previously_closed_balance_opens_when_there_is_no_opbd():
    result = only(document(statement(entry(), balances=balance("PRCD", "100.00") + balance("CLBD", "90.00"))))
    assert result.opening_balance == Decimal("100.00")


def test_interim_balances_open_and_close_a_page_of_a_statement():
    result = only(document(statement(entry(), balances=balance("ITBD", "100.00") + balance("ITBD", "90.00"))))
    assert (result.opening_balance, result.closing_balance) == (Decimal("100.00"), Decimal("90.00"))


def test_balance_marked_dbit_is_negative():
    result = only(document(statement(entry(), balances=balance("OPBD", "5.00", "DBIT") + balance("CLBD", "15.00",
                                                                                                   "DBIT"))))
    assert (result.opening_balance, result.closing_balance) == (Decimal("-5.00"), Decimal("-15.00"))
    assert result.balance_check() is True


def test_balance_without_credit_debit_indicator_is_a_credit():
    result = only(document(statement(entry(), balances=balance("OPBD", "100.00", None) + balance("CLBD", "90.00",
                                                                                                   None))))
    assert result.opening_balance == Decimal("100.00")


def test_closing_line_is_the_line_of_the_closing_balance():
    data = document(statement(entry()))
    assert only(data).closing_line == line_of(data, b"<Cd>CLBD</Cd>")


def test_statement_date_is_the_closing_balance_date():
    assert only(document(statement(entry()))).statement_date == date(2026, 3, 2)


def test_several_stmt_blocks_are_several_statements_in_file_order():
    data = document(statement(entry(), ident="A"), statement(entry(), ident="B", opening="90.00", closing="80.00"))
    result = parse_camt053(data, "t.xml")
    assert [(s.statement_id, s.opening_balance) for s in result] == [("A", Decimal("100.00")),
                                                                     ("B", Decimal("90.00"))]
    assert result[1].line == line_of(data, b"<Id>B</Id>") - 1


def test_statement_pagination_of_version_09_does_not_end_the_statement():
    paged = statement(entry()).replace("<Id>STMT-1</Id>", "<Id>STMT-1</Id>\n<StmtPgntn><PgNb>1</PgNb>"
                                                          "<LastPgInd>true</LastPgInd></StmtPgntn>")
    result = only(document(paged, version=9))
    assert len(result.entries) == 1 and result.balance_check() is True


def test_statement_without_entries_has_no_lines():
    result = only(document(statement(closing="100.00")))
    assert result.entries == [] and result.balance_check() is True


def test_account_is_othr_id_when_there_is_no_iban():
    assert only(document(statement(entry(), account="<Othr><Id>LT 1234 5678</Id></Othr>"))).account == "LT12345678"


def test_currency_comes_from_the_balances_when_the_account_has_none():
    assert only(document(statement(entry(), currency=None))).currency == "EUR"


def test_entry_in_another_currency_keeps_it():
    result = only(document(statement(entry("10.00", currency="USD"), closing="90.00")))
    assert result.entries[0].currency == "USD"


def test_statement_without_account_is_refused_naming_it():
    data = document(statement(entry(), account=""))
    error = refused(data)
    assert error.line == line_of(data, b"<Stmt>") and "no account" in error.message


def test_message_without_statements_is_refused():
    assert "no Stmt" in refused(document()).message


# ---------------------------------------------------------------- camt.054


def test_notification_has_no_balances():
    result = only(document(notification(entry()), kind="054"), parse_camt054)
    assert (result.opening_balance, result.closing_balance, result.balance_check()) == (None, None, None)


def test_notification_takes_its_currency_from_the_entries():
    assert only(document(notification(entry(currency="CHF")), kind="054"), parse_camt054).currency == "CHF"


def test_notification_details_without_amounts_are_read():
    details = transaction(party="Dbtr", name="Customer AG", ustrd=("Invoice 77",))
    result = only_entry(document(notification(entry("5.00", "CRDT", details=details)), kind="054"), parse_camt054)
    assert (result.amount, result.counterparty_name, result.remittance_info) == (Decimal("5.00"), "Customer AG",
                                                                                 "Invoice 77")


def test_notification_entry_without_dates_is_booked_on_the_notification_date():
    data = document(notification(entry(booked=None, value=None)), kind="054")
    assert only_entry(data, parse_camt054).booking_date == date(2026, 3, 2)


# ---------------------------------------------------------------- entries


def test_booking_and_value_dates_are_read():
    result = only_entry(document(statement(entry())))
    assert (result.booking_date, result.value_date) == (date(2026, 3, 2), date(2026, 3, 1))


def test_date_times_give_their_date_part():
    result = only_entry(document(statement(entry(booked="<DtTm>2026-03-02T23:59:00+01:00</DtTm>"))))
    assert result.booking_date == date(2026, 3, 2)


def test_entry_without_booking_date_is_booked_on_its_value_date():
    assert only_entry(document(statement(entry(booked=None)))).booking_date == date(2026, 3, 1)


def test_entry_without_any_date_is_booked_on_the_statement_date():
    assert only_entry(document(statement(entry(booked=None, value=None)))).booking_date == date(2026, 3, 2)


def test_entry_line_is_the_line_of_its_ntry():
    data = document(statement(entry("4.00"), entry("6.00")))
    assert [e.line for e in only(data).entries] == [line_of(data, b"<Ntry>"),
                                                    line_of(data, b"<Ntry>\n<NtryRef>NTRY-1</NtryRef>\n<Amt Ccy=\"EUR"
                                                                  b"\">6.00")]


def test_bank_reference_is_the_account_servicer_reference():
    assert only_entry(document(statement(entry()))).bank_reference == "BANKREF-1"


def test_bank_reference_falls_back_to_the_entry_reference():
    assert only_entry(document(statement(entry(reference="")))).bank_reference == "NTRY-1"


def test_transaction_code_is_domain_family_and_sub_family():
    assert only_entry(document(statement(entry()))).transaction_code == "PMNT-ICDT-ESCT"


def test_transaction_code_is_the_proprietary_code_without_a_domain():
    code = "<BkTxCd><Prtry><Cd>NTRF+166</Cd><Issr>DK</Issr></Prtry></BkTxCd>"
    assert only_entry(document(statement(entry(code=code)))).transaction_code == "NTRF+166"


def test_empty_entry_code_falls_back_to_the_detail_code():
    details = transaction().replace("</Refs>", "</Refs>\n<BkTxCd><Prtry><Cd>NMSC+201</Cd></Prtry></BkTxCd>")
    assert only_entry(document(statement(entry(code="<BkTxCd/>", details=details)))).transaction_code == "NMSC+201"


def test_reversal_keeps_the_sign_of_its_indicator_and_is_marked_in_the_code():
    result = only_entry(document(statement(entry("10.00", "DBIT", head="<RvslInd>true</RvslInd>"))))
    assert result.amount == Decimal("-10.00")
    assert result.transaction_code == "PMNT-ICDT-ESCT reversal"


def test_entry_without_amount_is_refused_naming_the_entry_line():
    data = document(statement(entry().replace('<Amt Ccy="EUR">10.00</Amt>', "")))
    error = refused(data)
    assert error.line == line_of(data, b"<Ntry>") and "Ntry has no Amt" in error.message


def test_entry_without_credit_debit_indicator_is_refused():
    data = document(statement(entry().replace("<CdtDbtInd>DBIT</CdtDbtInd>", "")))
    assert "Ntry has no CdtDbtInd" in refused(data).message


def test_unknown_credit_debit_indicator_is_refused_with_its_value():
    error = refused(document(statement(entry(indicator="DEBIT"))))
    assert "'DEBIT' is neither CRDT nor DBIT" in error.message


def test_amount_with_a_decimal_comma_is_refused_naming_its_line():
    data = document(statement(entry("10,00")))
    error = refused(data)
    assert error.line == line_of(data, b"10,00") and "'10,00' is not an amount" in error.message


def test_impossible_date_is_refused_naming_it():
    error = refused(document(statement(entry(booked="<Dt>2026-02-30</Dt>"))))
    assert "'2026-02-30' is not a date" in error.message


def test_charges_amount_is_never_taken_for_the_entry_amount():
    charges = "<Chrgs><Amt Ccy=\"EUR\">1.50</Amt><CdtDbtInd>DBIT</CdtDbtInd></Chrgs>"
    data = document(statement(entry().replace("<NtryRef>NTRY-1</NtryRef>", charges)))  # out of ISO order
    assert only_entry(data).amount == Decimal("-10.00")


# ---------------------------------------------------------------- transaction details


def test_counterparty_of_a_debit_is_the_creditor():
    result = only_entry(document(statement(entry(details=transaction(party="Cdtr")))))
    assert (result.counterparty_name, result.counterparty_iban) == ("Supplier GmbH", THEIRS)


def test_counterparty_of_a_credit_is_the_debtor_not_us():
    details = transaction(party="Dbtr", name="Customer BV").replace("</RltdPties>", f"<Cdtr><Nm>Us</Nm></Cdtr><CdtrAcct><Id><IBAN>{OURS}</IBAN></Id>"
                                              "</CdtrAcct></RltdPties>")
    result = only_entry(document(statement(entry("10.00", "CRDT", details=details), closing="110.00")))
    assert (result.counterparty_name, result.counterparty_iban) == ("Customer BV", THEIRS)


def test_party_name_inside_pty_of_version_08_is_read():
    details = transaction().replace("<Cdtr><Nm>Supplier GmbH</Nm></Cdtr>", "<Cdtr><Pty><Nm>Supplier GmbH</Nm>"
                                                                          "</Pty></Cdtr>")
    assert only_entry(document(statement(entry(details=details)), version=8)).counterparty_name == "Supplier GmbH"


def test_counterparty_account_is_othr_id_without_an_iban():
    details = transaction().replace(f"<IBAN>{THEIRS}</IBAN>", "<Othr><Id>  740618130100033626</Id></Othr>")
    assert only_entry(document(statement(entry(details=details)))).counterparty_iban == "740618130100033626"


def test_ultimate_debtor_names_a_credit_whose_debtor_has_no_name():
    details = transaction(party="Dbtr").replace("<Dbtr><Nm>Supplier GmbH</Nm></Dbtr>",
                                                "<UltmtDbtr><Nm>Parent Company</Nm></UltmtDbtr>")
    result = only_entry(document(statement(entry("10.00", "CRDT", details=details), closing="110.00")))
    assert result.counterparty_name == "Parent Company"


def test_end_to_end_id_is_read():
    assert only_entry(document(statement(entry(details=transaction())))).end_to_end_id == "E2E-1"


def test_end_to_end_id_notprovided_is_no_id():
    assert only_entry(document(statement(entry(details=transaction(e2e="NOTPROVIDED"))))).end_to_end_id == ""


def test_every_unstructured_line_joins_the_remittance_text_with_whitespace_squeezed():
    details = transaction(ustrd=("Invoice  4711", "  and\n 4712  "))
    assert only_entry(document(statement(entry(details=details)))).remittance_info == "Invoice 4711 and 4712"


def test_creditor_reference_is_the_structured_reference():
    strd = ("<RmtInf><Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp><Ref>RF18539007547034</Ref>"
            "</CdtrRefInf></Strd></RmtInf>")
    result = only_entry(document(statement(entry(details=transaction(ustrd=(), more=strd)))))
    assert (result.structured_ref, result.remittance_info) == ("RF18539007547034", "")


def test_referred_document_numbers_join_the_remittance_text():
    strd = ("<RmtInf><Ustrd>Payment</Ustrd><Strd><RfrdDocInf><Tp><CdOrPrtry><Cd>CINV</Cd></CdOrPrtry></Tp>"
            "<Nb>INV-2026-0042</Nb></RfrdDocInf></Strd></RmtInf>")
    result = only_entry(document(statement(entry(details=transaction(ustrd=(), more=strd)))))
    assert result.remittance_info == "Payment INV-2026-0042"


def test_additional_transaction_info_is_the_text_when_there_is_no_remittance():
    details = transaction(ustrd=(), more="<AddtlTxInf>Card payment Shop 12</AddtlTxInf>")
    assert only_entry(document(statement(entry(details=details)))).remittance_info == "Card payment Shop 12"


def test_additional_entry_info_is_the_text_when_no_detail_has_any():
    data = document(statement(entry(tail="<AddtlNtryInf>SEPA Lastschrift</AddtlNtryInf>")))
    assert only_entry(data).remittance_info == "SEPA Lastschrift"


def test_additional_entry_info_does_not_replace_the_details_text():
    data = document(statement(entry(details=transaction(), tail="<AddtlNtryInf>SEPA Gutschrift</AddtlNtryInf>")))
    assert only_entry(data).remittance_info == "INV-1"


def test_batch_entry_is_one_line_with_its_details_combined():
    batch = "<Btch><NbOfTxs>2</NbOfTxs></Btch>\n" + transaction(name="Anna", iban="DE02120300000000202051",
                                                                 ustrd=("Salary A",), e2e="E2E-A") + "\n" + \
        transaction(name="Bert", iban="DE02500105170137075030", ustrd=("Salary B",), e2e="E2E-B")
    result = only(document(statement(entry("10.00", details=batch))))
    (line,) = result.entries
    assert (line.amount, line.counterparty_name, line.counterparty_iban) == (Decimal("-10.00"), "Anna; Bert", "")
    assert (line.remittance_info, line.end_to_end_id) == ("Salary A Salary B", "")


def test_details_in_two_ntrydtls_blocks_belong_to_the_one_entry():
    data = document(statement(entry(details=transaction(ustrd=("first",)) + "\n</NtryDtls>\n<NtryDtls>\n"
                                            + transaction(ustrd=("second",)))))
    assert only_entry(data).remittance_info == "first second"


def test_xml_escapes_cdata_and_comments_are_read_as_text():
    details = transaction(name="Smith &amp; Sons", ustrd=("<![CDATA[Invoice <4711> & co]]>",))
    data = document(statement(entry(details=details.replace("<TxDtls>", "<TxDtls><!-- booked by batch -->"))))
    result = only_entry(data)
    assert (result.counterparty_name, result.remittance_info) == ("Smith & Sons", "Invoice <4711> & co")


# ---------------------------------------------------------------- versions, namespaces, safety


@pytest.mark.parametrize("version", range(2, 14))
def test_versions_02_to_13_are_read(version):
    assert only_entry(document(statement(entry(details=transaction())), version=version)).amount == Decimal("-10.00")


def test_elements_with_a_namespace_prefix_are_read():
    plain = document(statement(entry(details=transaction())))
    prefixed = re.sub(rb"<(/?)([A-Za-z]+)([ >/])", rb"<\1camt:\2\3", plain)
    prefixed = prefixed.replace(b"<camt:Document xmlns=", b"<camt:Document xmlns:camt=")
    assert parse_camt053(prefixed, "t.xml")[0].entries == only(plain).entries


def test_file_without_namespace_is_read_by_element_names():
    assert only_entry(document(statement(entry()), namespace="")).amount == Decimal("-10.00")


def test_unknown_version_is_refused():
    error = refused(document(statement(entry()), version=14))
    assert "unsupported camt.053 version camt.053.001.14" in error.message


def test_account_report_camt052_is_refused_as_not_a_statement():
    data = document(statement(entry()).replace("Stmt>", "Rpt>"), kind="052")
    error = refused(data)
    assert "not a camt.053 file: found camt.052.001.02 <BkToCstmrAcctRpt>" in error.message
    assert error.line == line_of(data, b"<BkToCstmrAcctRpt>")


def test_notification_given_as_statement_is_refused_with_the_right_format():
    error = refused(document(notification(entry()), kind="054"))
    assert "not a camt.053 file" in error.message and "--format camt054" in error.message


def test_statement_given_as_notification_is_refused_with_the_right_format():
    assert "--format camt053" in refused(document(statement(entry())), parse_camt054).message


def test_document_type_declaration_is_refused_and_no_entity_is_expanded():
    data = document(statement(entry())).replace(
        b"<Document", b'<!DOCTYPE Document [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<Document', 1)
    error = refused(data)
    assert error.line == 2 and "DTD" in error.message


def test_mismatched_tags_are_refused_naming_the_line():
    data = document(statement(entry())).replace(b"</Amt>", b"</Amount>", 1)
    error = refused(data)
    assert error.line == line_of(data, b"</Amount>") and "mismatched tag" in error.message


def test_empty_file_is_refused():
    assert "empty" in refused(b"  \n").message


def test_other_text_is_refused_as_not_xml():
    assert "not an XML document" in refused(b":20:STATEMENT\r\n:25:NL91ABNA0417164300\r\n").message


def test_declared_single_byte_encoding_is_read():
    data = document(statement(entry(details=transaction(name="Müller")))).decode().replace(
        'encoding="UTF-8"', 'encoding="ISO-8859-1"').encode("latin-1")
    assert only_entry(data).counterparty_name == "Müller"


def test_utf16_with_byte_order_mark_is_read():
    data = document(statement(entry())).decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert only_entry(data).amount == Decimal("-10.00")


def test_auto_detection_tells_statements_from_notifications():
    assert detect(document(statement(entry())), "t.xml") == "camt053"
    assert detect(document(notification(entry()), kind="054"), "t.xml") == "camt054"


# ---------------------------------------------------------------- written differently, read the same


def rewrite(data: bytes, choices: list[int]) -> bytes:
    """The same document written another way: whitespace and line breaks inside tags, empty
    elements self-closed, text escaped as character references or CDATA, comments between elements."""
    text = data.decode()
    pieces = re.split(r"(<[^>]*>)", text)
    out = []
    for index, piece in enumerate(pieces):
        choice = choices[index % len(choices)]
        if piece.startswith("</") and choice == 1:
            piece = piece[:-1] + " >"
        elif piece.startswith("<") and not piece.startswith(("<?", "</")) and choice == 2:
            piece = piece[:-1].replace(" ", "\n  ", 1) + "\n>"
        elif piece and not piece.startswith("<") and piece.strip() and choice == 3:
            piece = piece.replace("E", "&#69;")
        elif piece and not piece.startswith("<") and piece.strip() and choice == 4:
            piece = f"<![CDATA[{piece}]]>"
        elif piece.startswith("</") and choice == 5:
            piece += "<!-- c -->"
        out.append(piece)
    return "".join(out).encode()


VARIED = document(
    statement(entry("10.00", details=transaction()),
              entry("20.00", "CRDT", head="<RvslInd>true</RvslInd>", details=transaction(party="Cdtr")),
              entry("5.00", details=transaction(e2e="", ustrd=(), more="<AddtlTxInf>fee</AddtlTxInf>")),
              entry("7.00", tail="<AddtlNtryInf>Card</AddtlNtryInf>", code="<BkTxCd></BkTxCd>"),
              closing="98.00"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=12))
def test_a_file_written_another_way_reads_the_same(choices):
    expected = [(e.amount, e.booking_date, e.value_date, e.counterparty_name, e.counterparty_iban, e.remittance_info,
                 e.structured_ref, e.transaction_code, e.end_to_end_id, e.bank_reference)
                for e in only(VARIED).entries]
    got = [(e.amount, e.booking_date, e.value_date, e.counterparty_name, e.counterparty_iban, e.remittance_info,
            e.structured_ref, e.transaction_code, e.end_to_end_id, e.bank_reference)
           for e in only(rewrite(VARIED, choices)).entries]
    assert got == expected


# ---------------------------------------------------------------- large files (two processes)


def parse_in_a_thread(data: bytes):
    """Where threads run, the parser stays in one process; that is the reference here."""
    result = {}

    def work():
        try:
            result["statements"] = parse_camt053(data, "big.xml")
        except StatementError as exc:
            result["error"] = exc

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    return result


@pytest.fixture(scope="module")
def big_file() -> bytes:
    data = generate_camt053(12_500, seed=7)
    assert len(data) > camt.PARALLEL_BYTES
    return data


def test_large_file_read_in_two_processes_is_read_as_in_one(big_file):
    assert parse_camt053(big_file, "big.xml") == parse_in_a_thread(big_file)["statements"]


def test_large_file_that_ends_early_is_refused_naming_the_last_line(big_file):
    data = big_file[:-200]
    error = refused(data)
    assert error.line == data.count(b"\n") + 1 and "truncated" in error.message
    alone = parse_in_a_thread(data)["error"]
    assert (alone.line, alone.message) == (error.line, error.message)


def test_large_file_with_a_bad_amount_near_its_end_names_that_line(big_file):
    at = big_file.index(b'<Amt Ccy="EUR">', big_file.rindex(b"<Ntry>"))
    data = big_file[:at] + b'<Amt Ccy="EUR">1,00</Amt>' + big_file[big_file.index(b"</Amt>", at) + 6:]
    error = refused(data)
    assert error.line == line_of(data, b"1,00</Amt>") and "is not an amount" in error.message


def test_generated_benchmark_file_balances_and_has_every_entry(big_file):
    statements = parse_camt053(big_file, "big.xml")
    assert sum(len(s.entries) for s in statements) == 12_500
    assert all(s.balance_check() for s in statements)
    codes = {e.transaction_code for s in statements for e in s.entries}
    assert "PMNT-RDDT-UPDD reversal" in codes and any(e.structured_ref for s in statements for e in s.entries)


# ---------------------------------------------------------------- nothing but StatementError


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_parse_or_raise_statement_error(data):
    for parse in (parse_camt053, parse_camt054):
        try:
            parse(data, "fuzz.xml")
        except StatementError:
            pass


VALID = document(statement(entry("10.00", details=transaction()), entry("20.00", "CRDT", details=transaction(
    party="Dbtr")), closing="110.00"))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_valid_file_parses_or_raises_statement_error(data):
    lines = VALID.split(b"\n")
    mutation = data.draw(st.sampled_from(["truncate", "flip", "delete", "duplicate", "drop-tag"]))
    if mutation == "truncate":
        mutated = VALID[:data.draw(st.integers(0, len(VALID)))]
    elif mutation == "flip":
        at = data.draw(st.integers(0, len(VALID) - 1))
        mutated = VALID[:at] + bytes([data.draw(st.integers(0, 255))]) + VALID[at + 1:]
    else:
        at = data.draw(st.integers(0, len(lines) - 1))
        if mutation == "delete":
            lines.pop(at)
        elif mutation == "duplicate":
            lines.insert(at, lines[at])
        else:  # a whole element removed from its line: still well-formed, but something is missing
            lines[at] = re.sub(rb"<(\w+)>[^<]*</\1>", b"", lines[at], count=1)
        mutated = b"\n".join(lines)
    try:
        parse_camt053(mutated, "fuzz.xml")
    except StatementError:
        pass
