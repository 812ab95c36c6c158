"""SWIFT MT940 statements: sources.bank_files.mt940 on the genuine samples and hand-written files."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sources.bank_files.model import StatementError
from sources.bank_files.mt940 import identify, parse
from tests.sources.bank_files.mutations import mutate

OURS = "NL91ABNA0417164300"
HEAD = [":20:STMT1", f":25:{OURS}", ":28C:00012/001", ":60F:C260301EUR100,00"]
TAIL = [":62F:C260302EUR90,00"]  # after one debit of 10,00
DEBIT = ":61:2603020302D10,00NTRFNONREF"


def mt940(*lines: str, eol: str = "\n", encoding: str = "utf-8") -> bytes:
    return (eol.join(lines) + eol).encode(encoding)


def statement_with(*body: str) -> bytes:
    """One statement: HEAD, the given :61:/:86: lines (adding up to -10,00), TAIL."""
    return mt940(*HEAD, *body, *TAIL)


def only_entry(data: bytes):
    (result,) = parse(data, "t.sta")
    (entry,) = result.entries
    return entry


def refused(data: bytes) -> StatementError:
    with pytest.raises(StatementError) as caught:
        parse(data, "t.sta")
    return caught.value


# ---------------------------------------------------------------- the genuine samples


def samples(shared_dir):
    folder = shared_dir / "samples" / "bank" / "mt940"
    return sorted(p for p in folder.iterdir() if not p.name.endswith(".json"))


def test_every_sample_matches_its_expected_statements(shared_dir):
    for path in samples(shared_dir):
        expected = json.loads((path.parent / f"{path.name}.expected.json").read_text())["statements"]
        result = parse(path.read_bytes(), path.name)
        assert len(result) == len(expected), path.name
        for got, want in zip(result, expected, strict=True):
            assert got.currency == want["currency"], path.name
            assert got.opening_balance == Decimal(want["opening_balance"]), path.name
            assert got.closing_balance == Decimal(want["closing_balance"]), path.name
            assert got.balance_check() is True, path.name
            assert len(got.entries) == want["entries"], path.name
            assert got.entries_sum() == Decimal(want["entries_sum"]), path.name
            for entry, first in zip(got.entries, want["first_entries"]):
                assert entry.booking_date.isoformat() == first["booking_date"], path.name
                assert entry.amount == Decimal(first["amount"]), path.name


def test_every_sample_is_identified_as_mt940(shared_dir):
    assert all(identify(path.read_bytes()[:4096]) for path in samples(shared_dir))


def test_no_other_format_sample_is_identified_as_mt940(shared_dir):
    bank = shared_dir / "samples" / "bank"
    others = [p for fmt in ("coda", "camt053", "camt054", "ofx") for p in (bank / fmt).iterdir()
              if not p.name.endswith(".json")]
    others += [p for p in (bank / "broken").iterdir() if "mt940" not in p.name and p.suffix != ".md"]
    assert others and not any(identify(p.read_bytes()[:4096]) for p in others)


def test_truncated_sample_is_refused_naming_the_unterminated_statement(shared_dir):
    data = (shared_dir / "samples" / "bank" / "broken" / "truncated_mt940_danskebank_DK.sta").read_bytes()
    error = refused(data)
    assert error.line == 6 and ":62F:" in error.message and "end of the file" in error.message


def test_code_page_852_sample_reads_as_single_byte_and_fails_its_balance_check(shared_dir):
    data = (shared_dir / "samples" / "bank" / "broken" / "bad_encoding_mt940_raiffeisen-cmi_cp852.sta").read_bytes()
    (result,) = parse(data, "cp852.sta")
    assert result.balance_check() is False and result.entries_sum() == Decimal("-1012213.50")


def test_wrong_balance_sample_is_returned_with_a_failed_check(shared_dir):
    data = (shared_dir / "samples" / "bank" / "broken" / "wrong_balance_mt940_abn_sample2.sta").read_bytes()
    (result,) = parse(data, "abn.sta")
    assert result.balance_check() is False and result.closing_line == 16


# ---------------------------------------------------------------- statements


def test_statement_fields_and_lines():
    (result,) = parse(statement_with(DEBIT), "t.sta")
    assert (result.account, result.currency, result.statement_date) == (OURS, "EUR", date(2026, 3, 2))
    assert (result.opening_balance, result.closing_balance, result.balance_check()) == (100, 90, True)
    assert (result.line, result.closing_line) == (1, 6)


def test_statement_id_adds_account_number_and_closing_date_to_a_reused_reference():
    two = mt940(":20:MT940", f":25:{OURS}", ":28C:7", ":60F:C260301EUR1,00", ":62F:C260301EUR1,00",
                ":20:MT940", f":25:{OURS}", ":28C:8", ":60F:C260301EUR1,00", ":62F:C260302EUR1,00")
    assert [s.statement_id for s in parse(two, "t.sta")] == [f"MT940:{OURS}:7:2026-03-01", f"MT940:{OURS}:8:2026-03-02"]


def test_statement_number_broken_over_two_lines_is_joined():
    (result,) = parse(mt940(":20:X", f":25:{OURS}", ":28C:0000", "0", ":60F:C260301EUR1,00", ":62F:C260301EUR1,00"),
                      "t.sta")
    assert result.statement_id == f"X:{OURS}:00000:2026-03-01"


def test_swift_blocks_around_several_messages():
    message = [":20:A", f":25:{OURS}", ":28C:1", ":60F:C260301EUR1,00", ":62F:C260301EUR1,00", "-}"]
    data = mt940("{1:F01INGBNL2AXXXX0000000000}{2:I940INGBNL2AXXXXN}{3:{108:X1}}{4:", *message,
                 "{1:F01INGBNL2AXXXX0000000000}{2:I940INGBNL2AXXXXN}{4:", *message[:-1], "-}{5:{CHK:123456789ABC}}")
    assert [s.line for s in parse(data, "t.sta")] == [2, 9]


def test_tag_on_the_line_that_opens_block_4_keeps_line_numbers():
    data = mt940("{1:F01INGBNL2AXXXX0000000000}{2:I940INGBNL2AXXXXN}{4::20:A", f":25:{OURS}",
                 ":60F:C260301EUR1,00", ":61:260301C1,00NTRFNONREF", ":62F:C260301EUR2,00")
    (result,) = parse(data, "t.sta")
    assert result.statement_id.startswith("A:")
    assert (result.line, result.entries[0].line, result.closing_line) == (1, 4, 5)


def test_preamble_and_bank_headers_between_messages_are_ignored():
    data = mt940("This is an example file", "", "----------", "ABNANL2A", "940", "ABNANL2A", *HEAD, DEBIT, *TAIL,
                 "-XXX", "0000 01FVLBNL22AXXX00043", "940 00", ":20:B", f":25:{OURS}", ":60F:C260302EUR90,00",
                 ":62F:C260302EUR90,00")
    assert [(s.line, len(s.entries)) for s in parse(data, "t.sta")] == [(7, 1), (16, 0)]


@pytest.mark.parametrize("eol", ["\r\n", "\n", "\r"])
def test_crlf_lf_and_cr_line_ends_read_the_same(eol):
    (result,) = parse(mt940(*HEAD, DEBIT, ":86:PAYMENT", "CONTINUED", *TAIL, eol=eol), "t.sta")
    assert (result.entries[0].remittance_info, result.entries[0].line, result.closing_line) == (
        "PAYMENT CONTINUED", 5, 8)


def test_each_page_of_a_multi_page_statement_is_a_statement():
    data = mt940(":20:STARTUMS", ":25:20090500/0006853030", ":28C:00198/001", ":60F:C260301EUR100,00",
                 ":61:2603010301C5,00NTRFNONREF", ":62M:C260301EUR105,00",
                 ":20:STARTUMS", ":25:20090500/0006853030", ":28C:00198/002", ":60M:C260301EUR105,00",
                 ":61:2603010301D1,00NTRFNONREF", ":62F:C260301EUR104,00")
    pages = parse(data, "t.sta")
    assert [(p.opening_balance, p.closing_balance, p.balance_check()) for p in pages] == [
        (100, 105, True), (105, 104, True)]
    assert pages[0].statement_id != pages[1].statement_id


def test_page_without_its_own_header_keeps_the_previous_account():
    data = mt940(*HEAD, ":62M:C260301EUR100,00", ":60M:C260301EUR100,00", DEBIT, *TAIL)
    assert [s.account for s in parse(data, "t.sta")] == [OURS, OURS]


def test_header_without_balances_at_the_end_of_the_file_is_dropped():
    assert len(parse(statement_with(DEBIT) + b":20:NEXT\n:25:X\n", "t.sta")) == 1


def test_statement_level_86_is_not_an_entry_text():
    data = mt940(*HEAD, ":86:FOR YOUR INFORMATION", DEBIT, ":86:REAL TEXT", ":62F:C260302EUR90,00",
                 ":86:/SUM/1/0/10,00/0,/")
    assert only_entry(data).remittance_info == "REAL TEXT"


def test_two_86_fields_after_one_entry_are_one_text():
    assert only_entry(statement_with(DEBIT, ":86:Demo gebruiker", ":86:Spaarpot kantine")).remittance_info == (
        "Demo gebruiker Spaarpot kantine")


def test_available_balances_are_not_lines():
    data = mt940(*HEAD, DEBIT, *TAIL, ":64:C260302EUR90,00", ":65:C260303EUR90,00")
    (result,) = parse(data, "t.sta")
    assert len(result.entries) == 1 and result.closing_balance == 90


# ---------------------------------------------------------------- accounts


@pytest.mark.parametrize(("written", "reported"), [
    (OURS, OURS),
    ("NL77INGB0574908765EUR", "NL77INGB0574908765"),  # ING: currency after the IBAN (test IBAN, bad check digits)
    (f"ABNANL2A/{OURS}", OURS),
    ("DABADKKK/1234567890", "DABADKKK/1234567890"),
    ("20090500/0006853030", "20090500/0006853030"),
    ("1291.99.348EUR", "1291.99.348"),
    ("0800003200000001610722 EUR", "0800003200000001610722"),
    ("UBRTHUHB/123456789150ABCDEF002/EUR", "UBRTHUHB/123456789150ABCDEF002"),
    ("0878787878                         ", "0878787878"),
])
def test_account_is_the_iban_or_as_printed_without_currency(written, reported):
    (result,) = parse(mt940(":20:A", f":25:{written}", ":60F:C260301EUR1,00", ":62F:C260301EUR1,00"), "t.sta")
    assert result.account == reported


# ---------------------------------------------------------------- :61:


def test_entry_fields_from_61():
    entry = only_entry(statement_with(":61:2603030302D10,00NTRFOWNREF123//BANKREF987", "SUPPLEMENTARY TEXT"))
    assert (entry.value_date, entry.booking_date, entry.amount) == (date(2026, 3, 3), date(2026, 3, 2), -10)
    assert (entry.transaction_code, entry.bank_reference, entry.line) == ("NTRF", "BANKREF987", 5)
    assert entry.remittance_info == "OWNREF123 SUPPLEMENTARY TEXT"  # no :86:, so the references describe it


@pytest.mark.parametrize(("mark", "sign"), [("C", 1), ("D", -1), ("RC", -1), ("RD", 1)])
def test_reversal_of_credit_is_a_debit_and_reversal_of_debit_a_credit(mark, sign):
    data = mt940(*HEAD, f":61:260302{mark}10,00NTRFNONREF", f":62F:C260302EUR{100 + sign * 10},00")
    assert only_entry(data).amount == sign * 10


@pytest.mark.parametrize(("written", "amount"), [("CR10,00", 10), ("DR10,00", -10), ("DK10,00", -10),
                                                  ("CP10,00", 10), ("DD10,00", -10), ("RDR10,00", 10)])
def test_funds_code_letter_after_the_mark_is_not_part_of_the_mark(written, amount):
    data = mt940(*HEAD, f":61:260302{written}NTRFNONREF", f":62F:C260302EUR{100 + amount},00")
    assert only_entry(data).amount == amount


@pytest.mark.parametrize(("written", "amount"), [("80,", "80"), ("000000000025,00", "25"), ("1.5", "1.5"),
                                                  ("0000000000000000010,00", "10")])
def test_amount_formats(written, amount):
    data = mt940(*HEAD, f":61:260302C{written}NTRFNONREF", f":62F:C260302EUR{Decimal(100) + Decimal(amount)}")
    assert only_entry(data).amount == Decimal(amount)


@pytest.mark.parametrize(("written", "value", "booking"), [
    ("0912310101", date(2009, 12, 31), date(2010, 1, 1)),
    ("1001011231", date(2010, 1, 1), date(2009, 12, 31)),
    ("1002170204", date(2010, 2, 17), date(2010, 2, 4)),
    ("100217", date(2010, 2, 17), date(2010, 2, 17)),
])
def test_booking_date_is_the_entry_date_in_the_value_date_year_across_new_year(written, value, booking):
    entry = only_entry(statement_with(f":61:{written}D10,00NTRFNONREF"))
    assert (entry.value_date, entry.booking_date) == (value, booking)


def test_value_date_30_february_is_the_last_day_of_february():
    entry = only_entry(statement_with(":61:1602300301D10,00N024NONREF"))
    assert (entry.value_date, entry.booking_date) == (date(2016, 2, 29), date(2016, 3, 1))


def test_transaction_type_padded_with_a_space():
    entry = only_entry(statement_with(":61:121123D10,00NIT NONREF"))
    assert (entry.transaction_code, entry.remittance_info) == ("NIT", "")


def test_nonref_without_transaction_type():
    entry = only_entry(statement_with(":61:2603020302D10,00NONREF"))
    assert (entry.transaction_code, entry.bank_reference) == ("", "")


def test_counterparty_iban_on_the_supplementary_line():
    entry = only_entry(statement_with(":61:260302D10,00N102EREF            ", "NL02ABNA0123456789",
                                      ":86:/BENM//NAME/J DOE/REMI/Reference 1/ISDT/2026-03-02"))
    assert (entry.counterparty_iban, entry.counterparty_name, entry.remittance_info) == (
        "NL02ABNA0123456789", "J DOE", "Reference 1")


def test_counterparty_iban_as_the_customer_reference():
    entry = only_entry(statement_with(":61:2603020302D10,00NOVBNL86INGB0002445588", "j blom",
                                      ":86:NL86INGB0002445588 j blom", " " * 65, "Salaris maart"))
    assert (entry.counterparty_iban, entry.counterparty_name, entry.remittance_info) == (
        "NL86INGB0002445588", "j blom", "Salaris maart")


# ---------------------------------------------------------------- :86:


def test_ing_code_words():
    entry = only_entry(statement_with(
        DEBIT, ":86:/EREF/EV12341REP1231456T1234//CNTP/NL32INGB0000012345/INGBNL2",
        "A/ING BANK NV INZAKE WEB///REMI/USTD//EV10001REP1000000T1000/"))
    assert (entry.counterparty_name, entry.counterparty_iban) == ("ING BANK NV INZAKE WEB", "NL32INGB0000012345")
    assert (entry.end_to_end_id, entry.remittance_info) == ("EV12341REP1231456T1234", "EV10001REP1000000T1000")


def test_ing_structured_remittance_is_the_structured_reference():
    entry = only_entry(statement_with(DEBIT, ":86:/EREF/NOTPROVIDED//CNTP/NL32INGB0000012345/INGBNL2A/J.J",
                                      "anssen///REMI/STRD/CUR/9001123412341234/"))
    assert (entry.structured_ref, entry.end_to_end_id, entry.counterparty_name) == ("9001123412341234", "", "J.Janssen")


def test_lone_dash_inside_an_86_continues_it():
    entry = only_entry(statement_with(DEBIT, ":86:/EREF/X//MARF/MND", "-", "EV01//REMI/USTD//TEXT/"))
    assert entry.remittance_info == "TEXT"


def test_abn_amro_code_words_with_single_slashes():
    entry = only_entry(statement_with(DEBIT, ":86:/TRTP/SEPA OVERBOEKING/IBAN/NL80RABO0000000000/BIC/RABONL2U/NAME/M",
                                      "ollie B.V./REMI/Factuurnummer 2016.00000/EREF/NOTPROVIDED"))
    assert (entry.counterparty_name, entry.counterparty_iban, entry.remittance_info, entry.end_to_end_id) == (
        "Mollie B.V.", "NL80RABO0000000000", "Factuurnummer 2016.00000", "")


def test_rabobank_ordering_party_name_and_not_the_ultimate_one():
    entry = only_entry(statement_with(DEBIT, ":86:/EREF/E1/ULTD//NAME/ULTIMATE PAYER/ORDP//NAME/Bedrijf B.V./REMI/NR.1"))
    assert (entry.counterparty_name, entry.end_to_end_id, entry.remittance_info) == ("Bedrijf B.V.", "E1", "NR.1")


def test_creditor_reference_code_word_is_the_structured_reference():
    entry = only_entry(statement_with(DEBIT, ":86:/TRTP/iDEAL/CDTRREFTP//CD/SCOR/ISSR/CUR/CDTRREF/1234567890123456"))
    assert entry.structured_ref == "1234567890123456"


def test_code_words_without_remi_keep_the_text():
    entry = only_entry(statement_with(DEBIT, ":86:/OCMT/USD2853,12/", "PAYMENT OF INVOICES 204011665"))
    assert entry.remittance_info == "/OCMT/USD2853,12/ PAYMENT OF INVOICES 204011665"


def test_german_gvc_subfields():
    entry = only_entry(statement_with(
        DEBIT, ":86:166?00SEPA-UEBERWEISUNG?109310?20EREF+E2E-4711?21SVWZ+Rechnung 2026-0815 vom 0",
        "?2201.03.2026?30COBADEFFXXX?31DE89370400440532013000?32MUELLER, GRETEL UND HANS-PE?33TER"))
    assert (entry.end_to_end_id, entry.counterparty_iban) == ("E2E-4711", "DE89370400440532013000")
    assert entry.remittance_info == "Rechnung 2026-0815 vom 001.03.2026"  # ?21 is full: cut inside a word
    assert entry.counterparty_name == "MUELLER, GRETEL UND HANS-PETER"


def test_german_gvc_without_sepa_identifiers_joins_the_purpose_subfields():
    entry = only_entry(statement_with(DEBIT, ":86:051?00Gutschrift?10931?20PROJECT 3377?21ENGLAND?32KUNZ MEIER"))
    assert (entry.remittance_info, entry.counterparty_name, entry.counterparty_iban) == (
        "PROJECT 3377 ENGLAND", "KUNZ MEIER", "")


def test_german_gvc_purpose_without_svwz_is_all_of_it():
    entry = only_entry(statement_with(DEBIT, ":86:191?00SEPA-UEBERW?20KREF+TFNr 01022 MSGID CTSc-?2101 EBB"))
    assert entry.remittance_info == "KREF+TFNr 01022 MSGID CTSc-01 EBB"


def test_german_gvc_identifier_repeated_in_each_subfield_is_read_once():
    entry = only_entry(statement_with(DEBIT, ":86:166?00GUTSCHRIFT?20SVWZ+Miete Maerz?21SVWZ+Wohnung 3"))
    assert entry.remittance_info == "Miete Maerz Wohnung 3"


def test_gvc_with_another_subfield_separator():
    entry = only_entry(statement_with(DEBIT, ":86:000>100000000000", ">20BBBBAA2U", ">21NL20INGB0001234567",
                                      ">22TENAAMSTELLING TEGENREKENIN>23G EN ADRES"))
    assert (entry.counterparty_iban, entry.remittance_info) == ("NL20INGB0001234567", "TENAAMSTELLING TEGENREKENING EN ADRES")


def test_unstructured_gvc_999_with_colon_fields():
    entry = only_entry(statement_with(DEBIT, ":86:999SEPA_CREDIT_TRANSFER:Rechnung Nr 7983:SRB Steuerberatung mbH:"
                                             "DE89370400440532013000"))
    assert (entry.remittance_info, entry.counterparty_name, entry.counterparty_iban) == (
        "Rechnung Nr 7983", "SRB Steuerberatung mbH", "DE89370400440532013000")


def test_abn_amro_labelled_text():
    entry = only_entry(statement_with(DEBIT, ":86:SEPA OVERBOEKING                 IBAN: NL86INGB0002445588        ",
                                      "BIC: INGBNL2A                    NAAM: BELASTINGDIENST           ",
                                      "OMSCHRIJVING: AANSLAG 2026       KENMERK: 0000123"))
    assert (entry.counterparty_name, entry.counterparty_iban, entry.remittance_info, entry.end_to_end_id) == (
        "BELASTINGDIENST", "NL86INGB0002445588", "AANSLAG 2026", "0000123")


def test_free_text_lines_join_with_a_space_unless_a_line_was_full():
    entry = only_entry(statement_with(DEBIT, ":86:DB faktura 1234567", "Testkunde", "X" * 64 + "Y", "Z"))
    assert entry.remittance_info == "DB faktura 1234567 Testkunde " + "X" * 64 + "YZ"


@pytest.mark.parametrize(("text", "reference"), [
    ("FACTUUR +++090/9337/55493+++ DANK U", "090933755493"),
    ("Invoice RF18 5390 0754 7034 paid", "RF18539007547034"),
    ("BETALINGSKENM. 0000 0000 3007 6145 AANSLAG", "0000000030076145"),
    ("FACTUUR +++090/9337/55494+++ (wrong check digits)", ""),
])
def test_structured_reference_in_free_text(text, reference):
    assert only_entry(statement_with(DEBIT, f":86:{text}")).structured_ref == reference


def test_windows_1252_text_is_decoded():
    entry = only_entry(mt940(*HEAD, DEBIT, ":86:Überweisung für Café", *TAIL, encoding="cp1252"))
    assert entry.remittance_info == "Überweisung für Café"


def test_utf8_text_is_decoded():
    assert only_entry(mt940(*HEAD, DEBIT, ":86:Überweisung", *TAIL)).remittance_info == "Überweisung"


# ---------------------------------------------------------------- refused files


def test_statement_without_closing_balance_is_refused_naming_its_first_line():
    error = refused(mt940("-", *HEAD, DEBIT, ":86:TEXT"))
    assert error.line == 2 and "opening balance on line 5" in error.message and ":62F:" in error.message


def test_next_statement_before_the_closing_balance_is_refused():
    error = refused(mt940(*HEAD, DEBIT, *HEAD, DEBIT, *TAIL))
    assert error.line == 1 and "next statement's :20: on line 6" in error.message


def test_unreadable_61_is_refused_naming_its_line_and_value():
    error = refused(statement_with(":61:26030X0302D10,00NTRFNONREF"))
    assert error.line == 5 and "'26030X0302D10,00NTRFNONREF'" in error.message and "YYMMDD" in error.message


def test_61_without_mark_is_refused():
    assert "mark C/D/RC/RD" in refused(statement_with(":61:260302X10,00NTRFNONREF")).message


def test_61_amount_longer_than_15_digits_is_refused():
    assert refused(statement_with(":61:260302D1234567890123456,00NTRFNONREF")).line == 5


def test_impossible_value_date_is_refused():
    error = refused(statement_with(":61:2613020302D10,00NTRFNONREF"))
    assert error.line == 5 and "value date 2026-13-02 is not a date" in error.message


def test_unreadable_balance_is_refused_naming_the_tag():
    error = refused(mt940(*HEAD[:3], ":60F:C2603EUR100,00", DEBIT, *TAIL))
    assert error.line == 4 and ":60F: balance 'C2603EUR100,00'" in error.message


def test_opening_balance_without_currency_is_refused():
    assert "has no currency" in refused(mt940(*HEAD[:3], ":60F:C260301100,00", *TAIL)).message


def test_closing_balance_without_currency_takes_the_opening_one():
    (result,) = parse(mt940(*HEAD, DEBIT, ":62F:C26030290,00"), "t.sta")
    assert (result.currency, result.balance_check()) == ("EUR", True)


def test_entry_outside_a_statement_is_refused():
    mt942 = mt940(":20:X", f":25:{OURS}", ":28C:1", ":34F:EUR0,", ":13D:2603021200+0100", DEBIT)
    error = refused(mt942)
    assert error.line == 6 and "MT942" in error.message


def test_closing_balance_without_opening_is_refused():
    assert refused(mt940(*HEAD[:3], *TAIL)).line == 4


def test_second_opening_balance_is_refused():
    error = refused(mt940(*HEAD, ":60F:C260301EUR100,00", *TAIL))
    assert error.line == 5 and "first is on line 4" in error.message


def test_different_opening_and_closing_currencies_are_refused():
    error = refused(mt940(*HEAD, DEBIT, ":62F:C260302USD90,00"))
    assert error.line == 6 and "USD" in error.message and "EUR" in error.message


def test_statement_without_account_is_refused():
    error = refused(mt940(":20:X", ":60F:C260301EUR1,00", ":62F:C260301EUR1,00"))
    assert error.line == 1 and ":25:" in error.message


def test_file_without_statement_is_refused():
    assert refused(b"Date;Amount\n2026-03-01;10,00\n").line == 1


def test_wrong_balance_is_returned_not_refused():
    (result,) = parse(mt940(*HEAD, DEBIT, ":62F:C260302EUR95,00"), "t.sta")
    assert result.balance_check() is False


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize("head", [
    b":20:X\r\n:25:Y\r\n", b"{1:F01X}{2:I940X}{4:\r\n:20:X\r\n:25:Y\r\n", b"{1:F01X}{4::20:X\n:25:Y\n",
    b"\xef\xbb\xbf:20:X\n:25:Y\n", b"preamble\n------\n:20:X\n:25:Y\n"])
def test_identify_claims_bare_and_wrapped_mt940(head):
    assert identify(head)


@pytest.mark.parametrize("head", [b"<?xml version='1.0'?><Document/>", b"OFXHEADER:100\nDATA:OFXSGML\n",
                                  b"0000001012612345\n", b"date;amount;text :20: x\n", b""])
def test_identify_refuses_other_text(head):
    assert not identify(head)


# ---------------------------------------------------------------- robustness

VALID = mt940("{1:F01INGBNL2AXXXX0000000000}{2:I940INGBNL2AXXXXN}{4:", *HEAD,
              ":61:2603020302D5,00NTRFEREF//00000000001", "/TRCD/00100/",
              ":86:/EREF/E1//CNTP/NL32INGB0000012345/INGBNL2A/ING BANK///REMI/USTD//+++090/9337/55493+++/",
              ":61:2603020302D5,00N051NONREF", ":86:166?00GUTSCHRIFT?20EREF+X?21SVWZ+TEXT?31DE89370400440532013000",
              ":62F:C260302EUR90,00", "-}", eol="\r\n")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_parse_or_raise_statement_error(data):
    try:
        parse(data, "fuzz.sta")
    except StatementError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_valid_file_parses_or_raises_statement_error(data):
    mutated = mutate(data, VALID, [b":61:", b":86:", b"-", b"-}", b"{4:", b":62F:", b":20:", b"\r\n:61:"], b"\r\n")
    try:
        parse(mutated, "fuzz.sta")
    except StatementError:
        pass
