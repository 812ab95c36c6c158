"""OFX 1.x SGML / 2.x XML / QFX statements: sources.bank_files.ofx on real and hand-written files."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sources.bank_files.model import StatementError
from sources.bank_files.ofx import identify, parse
from tests.sources.bank_files.mutations import mutate

SGML_HEADER = (b"OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\nCHARSET:1252\n"
               b"COMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n")
XML_HEADER = b'<?xml version="1.0" encoding="UTF-8"?>\n<?OFX OFXHEADER="200" VERSION="220" SECURITY="NONE"?>\n'
TRANSACTION = b"<STMTTRN>\n<TRNTYPE>DEBIT\n<DTPOSTED>20260115\n<TRNAMT>-10.00\n<FITID>T1\n<NAME>SHOP\n</STMTTRN>\n"


def statement(transactions: bytes = TRANSACTION, *, account: bytes = b"<BANKACCTFROM>\n<BANKID>1\n<ACCTID>123456\n"
              b"<ACCTTYPE>CHECKING\n</BANKACCTFROM>\n", currency: bytes = b"<CURDEF>USD\n",
              balance: bytes = b"<LEDGERBAL>\n<BALAMT>90.00\n<DTASOF>20260131\n</LEDGERBAL>\n") -> bytes:
    return (b"<STMTRS>\n" + currency + account + b"<BANKTRANLIST>\n<DTSTART>20260101\n<DTEND>20260131\n"
            + transactions + b"</BANKTRANLIST>\n" + balance + b"</STMTRS>\n")


def ofx(*statements: bytes, header: bytes = SGML_HEADER) -> bytes:
    body = b"".join(statements) or statement()
    return (header + b"<OFX>\n<BANKMSGSRSV1>\n<STMTTRNRS>\n<TRNUID>1\n" + body
            + b"</STMTTRNRS>\n</BANKMSGSRSV1>\n</OFX>\n")


def only_entry(data: bytes):
    (result,) = parse(data, "t.ofx")
    (entry,) = result.entries
    return entry


def refused(data: bytes) -> StatementError:
    with pytest.raises(StatementError) as caught:
        parse(data, "t.ofx")
    return caught.value


# ---------------------------------------------------------------- the genuine samples


def samples(shared_dir):
    folder = shared_dir / "samples" / "bank" / "ofx"
    return sorted(p for p in folder.iterdir() if not p.name.endswith(".json"))


def test_every_sample_matches_its_expected_statements(shared_dir):
    for path in samples(shared_dir):
        expected = json.loads((path.parent / f"{path.name}.expected.json").read_text())["statements"]
        result = parse(path.read_bytes(), path.name)
        assert len(result) == len(expected), path.name
        for got, want in zip(result, expected, strict=True):
            assert got.account == want["account"]
            assert got.currency == want["currency"]
            assert got.opening_balance is None and got.balance_check() is None
            assert got.closing_balance == Decimal(want["closing_balance"])
            assert len(got.entries) == want["entries"]
            assert got.entries_sum() == Decimal(want["entries_sum"])
            assert got.closing_balance - got.entries_sum() == Decimal(want["derived_opening_balance"])
            for entry, first in zip(got.entries, want["first_entries"], strict=False):
                assert entry.booking_date == date.fromisoformat(first["booking_date"])
                assert entry.amount == Decimal(first["amount"])


def test_every_sample_is_identified_as_ofx(shared_dir):
    assert all(identify(p.read_bytes()[:4096]) for p in samples(shared_dir))


def test_no_other_format_sample_is_identified_as_ofx(shared_dir):
    bank = shared_dir / "samples" / "bank"
    others = [p for f in ("coda", "mt940", "camt053", "camt054") for p in (bank / f).iterdir()
              if not p.name.endswith(".json")]
    assert others and not any(identify(p.read_bytes()[:4096]) for p in others)


def test_broken_sample_names_the_transaction_without_amount_and_date(shared_dir):
    path = shared_dir / "samples" / "bank" / "broken" / "broken_ofx_oca_test_ofx_wrong.ofx"
    error = refused(path.read_bytes())
    assert error.line == 42
    assert "TRNAMT" in error.message and "DTPOSTED" in error.message


def test_header_run_together_on_one_line_is_read(shared_dir):
    path = shared_dir / "samples" / "bank" / "ofx" / "bankfile_wells-fargo_header-on-one-line.qfx"
    (result,) = parse(path.read_bytes(), path.name)
    assert result.account == "0000123456" and result.entries[0].remittance_info == "ANON MEMO"


# ---------------------------------------------------------------- structure


def test_statement_id_is_account_and_end_of_transaction_list():
    (result,) = parse(ofx(), "t.ofx")
    assert result.statement_id == "123456-2026-01-31"
    assert result.statement_date == date(2026, 1, 31)


def test_statement_id_falls_back_to_ledger_balance_date():
    data = ofx().replace(b"<DTEND>20260131\n", b"").replace(b"<DTASOF>20260131", b"<DTASOF>20260130")
    (result,) = parse(data, "t.ofx")
    assert result.statement_id == "123456-2026-01-30"


def test_ledger_balance_is_the_closing_balance_and_there_is_no_opening():
    (result,) = parse(ofx(), "t.ofx")
    assert result.closing_balance == Decimal("90.00") and result.opening_balance is None
    assert result.balance_check() is None


def test_statement_and_closing_lines_are_recorded():
    (result,) = parse(ofx(), "t.ofx")
    assert result.line == 15 and result.entries[0].line == 25 and result.closing_line == 34


def test_sgml_leaves_without_end_tags_and_xml_leaves_with_them_read_the_same():
    sgml = parse(ofx(), "t.ofx")[0]
    closed = (b"<STMTRS><CURDEF>USD</CURDEF><BANKACCTFROM><BANKID>1</BANKID><ACCTID>123456</ACCTID></BANKACCTFROM>"
              b"<BANKTRANLIST><DTSTART>20260101</DTSTART><DTEND>20260131</DTEND><STMTTRN><TRNTYPE>DEBIT</TRNTYPE>"
              b"<DTPOSTED>20260115</DTPOSTED><TRNAMT>-10.00</TRNAMT><FITID>T1</FITID><NAME>SHOP</NAME></STMTTRN>"
              b"</BANKTRANLIST><LEDGERBAL><BALAMT>90.00</BALAMT><DTASOF>20260131</DTASOF></LEDGERBAL></STMTRS>")
    xml = parse(ofx(closed, header=XML_HEADER), "t.ofx")[0]
    assert (xml.statement_id, xml.closing_balance, xml.entries[0].amount, xml.entries[0].counterparty_name) == (
        sgml.statement_id, sgml.closing_balance, sgml.entries[0].amount, sgml.entries[0].counterparty_name)


def test_mixed_closed_and_unclosed_leaves():
    entry = only_entry(ofx(statement(b"<STMTTRN><TRNTYPE>DEBIT</TRNTYPE><DTPOSTED>20260115<TRNAMT>-1.00</TRNAMT>"
                                     b"<NAME>A</NAME><MEMO>B\n</STMTTRN>")))
    assert (entry.amount, entry.counterparty_name, entry.remittance_info) == (Decimal("-1.00"), "A", "B")


def test_file_without_line_breaks_is_read():
    data = ofx().replace(b"\n", b"")
    (result,) = parse(data.replace(b"NONEOFX", b"NONE\n\nOFX"), "t.ofx")
    assert len(result.entries) == 1 and result.entries[0].line == 1


def test_empty_unclosed_leaf_does_not_swallow_the_next_one():
    entry = only_entry(ofx(statement(b"<STMTTRN><MEMO>\n<DTPOSTED>20260115\n<TRNAMT>-1\n<NAME>A\n</STMTTRN>")))
    assert (entry.remittance_info, entry.counterparty_name) == ("", "A")


def test_xml_empty_element_shorthand_is_an_empty_leaf():
    entry = only_entry(ofx(statement(b"<STMTTRN><MEMO/><DTPOSTED>20260115<TRNAMT>-1<NAME>A<SIC/></STMTTRN>")))
    assert (entry.remittance_info, entry.counterparty_name) == ("", "A")


def test_omitted_transaction_end_tags_are_implied():
    two = b"<STMTTRN><DTPOSTED>20260115<TRNAMT>-1<FITID>1\n<STMTTRN><DTPOSTED>20260116<TRNAMT>-2<FITID>2\n"
    (result,) = parse(ofx(statement(two)), "t.ofx")
    assert [e.bank_reference for e in result.entries] == ["1", "2"]


def test_comments_are_ignored_and_line_numbers_kept():
    data = ofx(statement(b"<!-- <STMTTRN><DTPOSTED>20260101<TRNAMT>-5\n</STMTTRN> -->\n" + TRANSACTION))
    (result,) = parse(data, "t.ofx")
    assert len(result.entries) == 1 and result.entries[0].line == 27


def test_whitespace_and_line_breaks_inside_values_are_squeezed():
    entry = only_entry(ofx(statement(b"<STMTTRN><DTPOSTED> 20260115 <TRNAMT>\n -3.50 \n<NAME>  BIG \n SHOP"
                                     b"<MEMO>paid\n   at the\tdoor\n</STMTTRN>")))
    assert (entry.amount, entry.counterparty_name, entry.remittance_info) == (
        Decimal("-3.50"), "BIG SHOP", "paid at the door")


def test_lower_case_tags_are_read():
    entry = only_entry(ofx(statement(b"<stmttrn><dtposted>20260115<trnamt>-2.00<name>low</stmttrn>")))
    assert (entry.amount, entry.counterparty_name) == (Decimal("-2.00"), "low")


def test_entities_and_br_inside_memo_are_text():
    entry = only_entry(ofx(statement(b"<STMTTRN><DTPOSTED>20260115<TRNAMT>-1<NAME>A &amp; B &#233;"
                                     b"<MEMO>line one<BR/>line two</MEMO></STMTTRN>")))
    assert (entry.counterparty_name, entry.remittance_info) == ("A & B \u00e9", "line one line two")


def test_several_statements_in_file_order():
    second = statement(account=b"<BANKACCTFROM><ACCTID>999<ACCTTYPE>SAVINGS</BANKACCTFROM>")
    result = parse(ofx(statement(), second), "t.ofx")
    assert [s.account for s in result] == ["123456", "999"]


def test_several_transaction_lists_in_one_statement_make_one_statement():
    data = ofx(statement(TRANSACTION + b"</BANKTRANLIST><BANKTRANLIST><DTSTART>20260201<DTEND>20260228\n"
                         + TRANSACTION.replace(b"T1", b"T2")))
    (result,) = parse(data, "t.ofx")
    assert [e.bank_reference for e in result.entries] == ["T1", "T2"]
    assert result.statement_id == "123456-2026-02-28"


def test_credit_card_statement_reads_its_account():
    card = (b"<CREDITCARDMSGSRSV1><CCSTMTTRNRS><TRNUID>1<CCSTMTRS><CURDEF>EUR<CCACCTFROM><ACCTID>4111XXXX1111"
            b"</CCACCTFROM><BANKTRANLIST><DTSTART>20260101<DTEND>20260131\n" + TRANSACTION
            + b"</BANKTRANLIST><LEDGERBAL><BALAMT>-562.00<DTASOF>20260131</LEDGERBAL></CCSTMTRS>"
            b"</CCSTMTTRNRS></CREDITCARDMSGSRSV1>")
    (result,) = parse(SGML_HEADER + b"<OFX>" + card + b"</OFX>", "t.qfx")
    assert (result.account, result.currency, result.closing_balance) == ("4111XXXX1111", "EUR", Decimal("-562.00"))


def test_file_starting_at_ofx_element_without_header():
    assert parse(ofx(header=b""), "t.ofx")[0].account == "123456"
    assert identify(b"\r\n<OFX>\r\n<SIGNONMSGSRSV1>")


def test_ofx_element_with_attributes_is_the_body():
    data = ofx(header=XML_HEADER).replace(b"<OFX>", b'<OFX xmlns="http://ofx.net/ifx/2.0/ofx">')
    assert identify(data) and parse(data, "t.ofx")[0].account == "123456"


def test_card_statement_with_a_bank_account_aggregate_reads_it():
    card = statement().replace(b"STMTRS>", b"CCSTMTRS>")
    assert parse(ofx(card), "t.qfx")[0].account == "123456"


def test_two_concatenated_ofx_documents_give_both_statements():
    second = ofx(statement(account=b"<BANKACCTFROM><ACCTID>999</BANKACCTFROM>"))
    assert [s.account for s in parse(ofx() + second, "t.ofx")] == ["123456", "999"]


def test_investment_statement_is_skipped():
    investment = (b"<INVSTMTMSGSRSV1><INVSTMTTRNRS><INVSTMTRS><CURDEF>USD<INVACCTFROM><ACCTID>I1</INVACCTFROM>"
                  b"<INVTRANLIST><INVBANKTRAN>" + TRANSACTION + b"<SUBACCTFUND>CASH</INVBANKTRAN></INVTRANLIST>"
                  b"</INVSTMTRS></INVSTMTTRNRS></INVSTMTMSGSRSV1>")
    data = ofx().replace(b"</OFX>", investment + b"</OFX>")
    assert [s.account for s in parse(data, "t.ofx")] == ["123456"]


def test_missing_end_tags_after_the_ledger_balance_are_forgiven():
    data = ofx().split(b"</STMTRS>")[0]
    (result,) = parse(data, "t.ofx")
    assert result.closing_balance == Decimal("90.00") and len(result.entries) == 1


# ---------------------------------------------------------------- values


def test_amount_is_signed_as_written():
    plus = only_entry(ofx(statement(TRANSACTION.replace(b"-10.00", b"+10.00"))))
    assert plus.amount == Decimal("10.00")


def test_amount_with_decimal_comma():
    assert only_entry(ofx(statement(TRANSACTION.replace(b"-10.00", b"-100,25")))).amount == Decimal("-100.25")


def test_amount_without_decimals_or_with_leading_point():
    assert only_entry(ofx(statement(TRANSACTION.replace(b"-10.00", b"-80")))).amount == Decimal("-80")
    assert only_entry(ofx(statement(TRANSACTION.replace(b"-10.00", b"-.5")))).amount == Decimal("-0.5")


def test_amount_with_digit_grouping_takes_the_last_mark_as_radix():
    assert only_entry(ofx(statement(TRANSACTION.replace(b"-10.00", b"-1.234,56")))).amount == Decimal("-1234.56")
    assert only_entry(ofx(statement(TRANSACTION.replace(b"-10.00", b"1,234.56")))).amount == Decimal("1234.56")


def test_date_with_time_and_zone_is_the_date_written_not_shifted():
    entry = only_entry(ofx(statement(TRANSACTION.replace(b"20260115", b"20260115233000.000[-5:EST]"))))
    assert entry.booking_date == date(2026, 1, 15)


def test_date_with_hours_and_minutes_only():
    entry = only_entry(ofx(statement(TRANSACTION.replace(b"20260115", b"202601151120"))))
    assert entry.booking_date == date(2026, 1, 15)


def test_dtuser_is_the_value_date_and_dtavail_its_fallback():
    user = only_entry(ofx(statement(TRANSACTION.replace(b"<TRNAMT>", b"<DTUSER>20260113\n<TRNAMT>"))))
    avail = only_entry(ofx(statement(TRANSACTION.replace(b"<TRNAMT>", b"<DTAVAIL>20260116\n<TRNAMT>"))))
    assert (user.value_date, avail.value_date) == (date(2026, 1, 13), date(2026, 1, 16))


def test_fields_of_a_transaction():
    entry = only_entry(ofx(statement(
        b"<STMTTRN><TRNTYPE>xfer<DTPOSTED>20260115<TRNAMT>25.00<FITID>F-9<CHECKNUM>1001<REFNUM>R-7"
        b"<PAYEE><NAME>ACME LTD<ADDR1>Main St 1<CITY>X</PAYEE><BANKACCTTO><BANKID>B<ACCTID>NL91 ABNA 0417 1643 00"
        b"<ACCTTYPE>CHECKING</BANKACCTTO><MEMO>invoice 42</STMTTRN>")))
    assert (entry.counterparty_name, entry.counterparty_iban, entry.transaction_code, entry.bank_reference) == (
        "ACME LTD", "NL91ABNA0417164300", "XFER", "F-9")
    assert entry.remittance_info == "invoice 42; check 1001; ref R-7"


def test_currency_aggregate_gives_the_transaction_currency():
    entry = only_entry(ofx(statement(TRANSACTION.replace(b"<FITID>", b"<CURRENCY><CURRATE>1.1<CURSYM>chf"
                                                                      b"</CURRENCY><FITID>"))))
    assert entry.currency == "CHF"


def test_original_currency_keeps_the_statement_currency():
    entry = only_entry(ofx(statement(TRANSACTION.replace(b"<FITID>", b"<ORIGCURRENCY><CURRATE>1.1<CURSYM>CHF"
                                                                      b"</ORIGCURRENCY><FITID>"))))
    assert entry.currency == ""


# ---------------------------------------------------------------- encodings


def test_charset_1252_reads_windows_1252_bytes():
    entry = only_entry(ofx(statement(TRANSACTION.replace(b"SHOP", "Caf\u00e9 \u20ac".encode("cp1252")))))
    assert entry.counterparty_name == "Caf\u00e9 \u20ac"


def test_charset_1252_file_written_in_utf8_is_read_as_utf8():
    entry = only_entry(ofx(statement(TRANSACTION.replace(b"SHOP", "Caf\u00e9".encode("utf-8")))))
    assert entry.counterparty_name == "Caf\u00e9"


def test_other_sgml_charset_is_used():
    header = SGML_HEADER.replace(b"CHARSET:1252", b"CHARSET:1250")
    entry = only_entry(ofx(statement(TRANSACTION.replace(b"SHOP", "\u0141\u00f3d\u017a".encode("cp1250"))),
                           header=header))
    assert entry.counterparty_name == "\u0141\u00f3d\u017a"


def test_declared_utf8_with_latin1_bytes_is_an_error_naming_the_line():
    header = SGML_HEADER.replace(b"ENCODING:USASCII", b"ENCODING:UTF-8")
    error = refused(ofx(statement(TRANSACTION.replace(b"SHOP", "Caf\u00e9".encode("latin-1"))), header=header))
    assert error.line == 30 and "UTF-8" in error.message.upper()


def test_xml_declared_utf8_with_latin1_bytes_is_an_error():
    error = refused(ofx(statement(TRANSACTION.replace(b"SHOP", b"Caf\xe9")), header=XML_HEADER))
    assert error.line == 22


def test_xml_declared_single_byte_encoding_is_used():
    header = XML_HEADER.replace(b"UTF-8", b"ISO-8859-15")
    entry = only_entry(ofx(statement(TRANSACTION.replace(b"SHOP", "\u20ac".encode("iso8859-15"))), header=header))
    assert entry.counterparty_name == "\u20ac"


def test_unknown_declared_encoding_is_refused():
    assert "encoding 'klingon'" in refused(ofx(header=XML_HEADER.replace(b"UTF-8", b"klingon"))).message
    assert "CHARSET:EBCDIC" in refused(ofx(header=SGML_HEADER.replace(b"1252", b"EBCDIC"))).message


# ---------------------------------------------------------------- refused files


def test_transaction_without_amount_is_refused_naming_its_line():
    error = refused(ofx(statement(TRANSACTION.replace(b"<TRNAMT>-10.00\n", b""))))
    assert error.line == 25 and "has no TRNAMT (amount);" in error.message


def test_transaction_without_posting_date_is_refused_naming_its_line():
    error = refused(ofx(statement(TRANSACTION.replace(b"<DTPOSTED>20260115\n", b""))))
    assert error.line == 25 and "has no DTPOSTED (date posted);" in error.message


def test_statement_without_account_is_refused():
    error = refused(ofx(statement(account=b"")))
    assert error.line == 15 and "BANKACCTFROM/ACCTID" in error.message


def test_statement_without_currency_is_refused():
    assert "CURDEF" in refused(ofx(statement(currency=b""))).message


def test_bad_amount_is_refused_naming_its_line_and_value():
    error = refused(ofx(statement(TRANSACTION.replace(b"-10.00", b"-1O.00"))))
    assert error.line == 28 and "'-1O.00'" in error.message


def test_bad_date_is_refused_naming_its_line_and_value():
    error = refused(ofx(statement(TRANSACTION.replace(b"20260115", b"2026-01-15"))))
    assert error.line == 27 and "'2026-01-15'" in error.message
    assert "20260231" in refused(ofx(statement(TRANSACTION.replace(b"20260115", b"20260231")))).message


def test_bad_ledger_balance_is_refused():
    error = refused(ofx(statement(balance=b"<LEDGERBAL><BALAMT>n/a<DTASOF>20260131</LEDGERBAL>")))
    assert "LEDGERBAL/BALAMT 'n/a'" in error.message


def test_truncated_file_is_refused_naming_the_statement():
    data = ofx()
    error = refused(data[:data.index(b"<LEDGERBAL>")])
    assert error.line == 15 and "truncated" in error.message


def test_file_without_statement_is_refused_with_the_bank_status():
    data = SGML_HEADER + (b"<OFX><BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>2000<SEVERITY>ERROR"
                          b"<MESSAGE>Account locked</STATUS></STMTTRNRS></BANKMSGSRSV1></OFX>")
    assert "status 2000: Account locked" in refused(data).message


def test_file_without_ofx_element_is_refused():
    error = refused(SGML_HEADER + b"nothing here")
    assert error.line == 1 and "<OFX>" in error.message


def test_identify_refuses_other_text():
    assert not identify(b":20:STATEMENT\r\n:25:123\r\n")
    assert not identify(b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">')
    assert identify(b"\xef\xbb\xbfOFXHEADER:100\r\nDATA:OFXSGML")


# ---------------------------------------------------------------- robustness

VALID = ofx(statement(TRANSACTION + TRANSACTION.replace(b"T1", b"T2")), header=SGML_HEADER)


def outcome(data: bytes) -> None:
    try:
        parse(data, "fuzz.ofx")
    except StatementError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_parse_or_raise_statement_error(data):
    outcome(data)
    outcome(SGML_HEADER + b"<OFX>" + data)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_valid_file_parses_or_raises_statement_error(data):
    mutated = mutate(data, VALID, [b"<", b">", b"</STMTRS>", b"<STMTTRN>", b"<!--", b"&#x", b"<BR/>", b"\xff"])
    outcome(mutated)
