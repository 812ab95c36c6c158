"""CODA parser: real sample files from ../shared, and small files built record by record.

The builders below place fields at the 1-based positions of the Febelfin CODA standard, so a
test reads like the layout it exercises.
"""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sources.bank_files.coda import identify, parse
from sources.bank_files.model import StatementError

ACCOUNT = "BE68539007547034"


def record(*fields: tuple[int, str]) -> str:
    """A 128-character record with each (start, text) at its 1-based start position."""
    line = [" "] * 128
    for start, text in fields:
        line[start - 1:start - 1 + len(text)] = text
    assert len(line) == 128
    return "".join(line)


def money(cents: int) -> str:
    return f"{abs(cents) * 10:015d}"


def header(version: str = "2", created: str = "150326") -> str:
    return record((1, "00000"), (6, created), (12, "725"), (15, "05"), (35, "HOTEL DE KROON NV"),
                  (61, "KREDBEBB"), (128, version))


def old_balance(cents: int = 100000, structure: str = "2", account: str = ACCOUNT, currency: str = "EUR",
                paper: str = "042", when: str = "140326") -> str:
    currency_at = [(40, currency)] if structure in "123" else [(19, currency), (22, "0"), (23, "BE")]
    return record((1, "1"), (2, structure), (3, paper), (6, account), *currency_at, (43, "1" if cents < 0 else "0"),
                  (44, money(cents)), (59, when), (65, "HOTEL DE KROON NV"), (126, paper))


def new_balance(cents: int, account: str = ACCOUNT, when: str = "160326") -> str:
    return record((1, "8"), (2, "042"), (5, account), (39, "EUR"), (42, "1" if cents < 0 else "0"),
                  (43, money(cents)), (58, when), (128, "0"))


TRAILER = record((1, "9"), (17, "000000"), (128, "2"))


def movement(cents: int, seq: int = 1, detail: int = 0, comm: str = "", comm_type: str = "0",
             code: str = "00150000", value: str = "160326", entry: str = "160326", ref: str = "BANKREF1") -> str:
    return record((1, "21"), (3, f"{seq:04d}"), (7, f"{detail:04d}"), (11, ref), (32, "1" if cents < 0 else "0"),
                  (33, money(cents)), (48, value), (54, code), (62, comm_type), (63, comm[:53]), (116, entry),
                  (122, "042"), (126, "1"), (128, "0"))


def movement_2(comm: str = "", reference: str = "", bic: str = "", seq: int = 1, detail: int = 0) -> str:
    return record((1, "22"), (3, f"{seq:04d}"), (7, f"{detail:04d}"), (11, comm[:53]), (64, reference),
                  (99, bic), (126, "1"), (128, "0"))


def movement_3(account: str = "", name: str = "", comm: str = "", seq: int = 1, detail: int = 0) -> str:
    return record((1, "23"), (3, f"{seq:04d}"), (7, f"{detail:04d}"), (11, account), (48, name), (83, comm[:43]),
                  (126, "0"), (128, "0"))


def information(comm: str, comm_type: str = "0", seq: int = 1) -> str:
    return record((1, "31"), (3, f"{seq:04d}"), (7, "0001"), (11, "BANKREF1"), (32, "00150000"), (40, comm_type),
                  (41, comm[:73]), (126, "0"), (128, "0"))


def coda(*records: str) -> bytes:
    return ("\n".join(records) + "\n").encode("latin-1")


def statement_of(*movement_records: str, opening: int = 100000, closing: int | None = None) -> bytes:
    return coda(header(), old_balance(opening), *movement_records, new_balance(opening if closing is None else closing), TRAILER)


def only(data: bytes):
    statements = parse(data, "test.cod")
    assert len(statements) == 1
    return statements[0]


def refused(data: bytes) -> StatementError:
    with pytest.raises(StatementError) as caught:
        parse(data, "test.cod")
    return caught.value


def sample(shared_dir, folder: str, name: str) -> bytes:
    return (shared_dir / "samples" / "bank" / folder / name).read_bytes()


# ---------------------------------------------------------------- real files


def test_belgian_account_number_structure_is_reported_as_printed(shared_dir):
    statement = only(sample(shared_dir, "coda", "php-coda-parser_sample1.cod"))
    assert (statement.account, statement.currency) == ("138536152215", "EUR")
    assert (statement.opening_balance, statement.closing_balance) == (Decimal("17752.12"), Decimal("17832.12"))
    assert statement.balance_check() is True


def test_ogm_structured_communication_becomes_structured_ref(shared_dir):
    first = only(sample(shared_dir, "coda", "php-coda-parser_sample1.cod")).entries[0]
    assert first.structured_ref == "+++000/0035/05158+++"
    assert (first.counterparty_name, first.counterparty_iban) == ("KLANT1 MET NAAM1", "BE22313215646432")


def test_globalisation_code_without_details_is_an_ordinary_movement(shared_dir):
    statement = only(sample(shared_dir, "coda", "pycoda_Coda_v2_3_faulty_globalisation_2.txt"))
    assert [e.amount for e in statement.entries] == [Decimal("-11442.41"), Decimal("-2492.22")]
    assert statement.balance_check() is True


ONTVANGEN = "wrong_balance_coda_Ontvangen_CODA.2012-01-11-18.59.15.txt"


def test_type_8_details_are_not_lines(shared_dir):
    statement = only(sample(shared_dir, "broken", ONTVANGEN))
    assert [e.amount for e in statement.entries] == [Decimal(a) for a in ("-435.00", "3044.45", "-479.04",
                                                                          "-479.04", "63.74")]


def test_record_8_account_differing_from_record_1_still_parses_and_fails_the_balance_check(shared_dir):
    statement = only(sample(shared_dir, "broken", ONTVANGEN))
    assert statement.account == "BE46737018594236"
    assert (statement.balance_check(), statement.closing_line) == (False, 23)


def test_truncated_sample_names_its_last_record(shared_dir):
    error = refused(sample(shared_dir, "broken", "truncated_coda_sample1.cod"))
    assert error.line == 10
    assert "missing record 8" in error.message


def test_unsupported_version_sample_is_refused_on_line_1(shared_dir):
    error = refused(sample(shared_dir, "broken", "unsupported_version_coda_faulty_version.txt"))
    assert error.line == 1
    assert error.message.startswith("unsupported CODA version 5")


def test_identify_claims_coda_samples_only(shared_dir):
    bank = shared_dir / "samples" / "bank"
    files = [p for p in bank.glob("*/*") if p.suffix not in (".json", ".md", ".py")]
    claimed = {p.name for p in files if identify(p.read_bytes()[:4096])}
    coda_files = {p.name for p in files if p.parent.name == "coda" or "_coda_" in p.name}
    assert claimed == coda_files


# ---------------------------------------------------------------- records and fields


def test_identify_refuses_other_text():
    assert not identify(b":20:STATEMENT\r\n:25:NL91ABNA0417164300\r\n")
    assert not identify(b"00000,1,2,3\n")
    assert identify(header().encode())


def test_sign_digit_1_is_a_debit_and_amounts_read_as_cents():
    zero_debit = movement(0, seq=2)[:31] + "1" + movement(0, seq=2)[32:]
    data = statement_of(movement(-1234, seq=1), zero_debit, closing=100000 - 1234)
    assert [str(e.amount) for e in only(data).entries] == ["-12.34", "0.00"]


def test_a_non_zero_third_decimal_is_kept():
    mills = movement(0)[:32] + "000000000001235" + movement(0)[47:]
    assert only(statement_of(mills)).entries[0].amount == Decimal("1.235")


def test_entry_date_is_the_booking_date_else_the_value_date_else_the_statement_date():
    data = statement_of(movement(100, seq=1, value="150326", entry="160326"),
                        movement(100, seq=2, value="150326", entry="000000"),
                        movement(100, seq=3, value="000000", entry="000000"), closing=100300)
    entries = only(data).entries
    assert [e.booking_date for e in entries] == [date(2026, 3, 16), date(2026, 3, 15), date(2026, 3, 16)]
    assert [e.value_date for e in entries] == [date(2026, 3, 15), date(2026, 3, 15), None]


def test_free_communication_is_joined_over_2_1_2_2_2_3_before_squeezing():
    text = "FACTUUR 2026-0117 LINNENSERVICE MAART EN ONDERHOUDSCONTRACT 2026"
    data = statement_of(movement(-500, comm=text[:53]), movement_2(comm=text[53:]),
                        movement_3(ACCOUNT, "LINNEN BV", comm="KLANT 4471"), closing=99500)
    assert only(data).entries[0].remittance_info == text + " KLANT 4471"


def test_information_records_add_their_free_text():
    data = statement_of(movement(-500, comm="HUUR MAART"), information("BETAALD VIA ONLINE BANKIEREN"),
                        record((1, "32"), (3, "0001"), (7, "0001"), (11, "OP 15-03-2026")), closing=99500)
    assert only(data).entries[0].remittance_info == "HUUR MAART BETAALD VIA ONLINE BANKIEREN OP 15-03-2026"


def test_structured_information_001_gives_the_counterparty_name_when_2_3_has_none():
    data = statement_of(movement(500), information("001JANSSENS PIETER", comm_type="1"), closing=100500)
    entry = only(data).entries[0]
    assert (entry.counterparty_name, entry.remittance_info) == ("JANSSENS PIETER", "")


def test_sepa_direct_debit_127_gives_the_creditors_communication():
    body = ("160326" + "110" + "BE12ZZZ0123456789".ljust(35) + "MANDATE-77812".ljust(35)
            + "ENERGY INVOICE MARCH".ljust(62) + " " * 5)
    comm = "127" + body
    data = statement_of(movement(-8917, comm=comm[:53], comm_type="1", code="00505000"),
                        movement_2(comm=comm[53:106], reference="NOTPROVIDED"),
                        movement_3("BE58001234567879", "ELECTRABEL NV", comm=comm[106:149]), closing=100000 - 8917)
    entry = only(data).entries[0]
    assert (entry.remittance_info, entry.end_to_end_id, entry.structured_ref) == ("ENERGY INVOICE MARCH", "", "")


def test_customer_reference_of_2_2_is_the_end_to_end_id():
    data = statement_of(movement(-100), movement_2(reference="INV-2026-0117", bic="GEBABEBB"), closing=99900)
    assert only(data).entries[0].end_to_end_id == "INV-2026-0117"


def test_belgian_counterparty_account_in_2_3_stops_before_its_currency():
    data = statement_of(movement(100), movement_2(), movement_3("001234567890 EUR", "DUPONT"), closing=100100)
    assert only(data).entries[0].counterparty_iban == "001234567890"


def test_counterparty_iban_written_with_spaces_is_joined():
    data = statement_of(movement(100), movement_2(), movement_3("GB29 NWBK 6016 1331 9268 19", "SMITH LTD"),
                        closing=100100)
    assert only(data).entries[0].counterparty_iban == "GB29NWBK60161331926819"


def test_globalised_total_is_one_line_and_its_details_are_skipped():
    data = statement_of(movement(-3000, seq=1, code="10101000", comm="SALARIES MARCH"),
                        movement(-1750, seq=1, detail=1, code="50101000", comm="PEETERS"),
                        movement_2(seq=1, detail=1), movement_3(ACCOUNT, "PEETERS AN", seq=1, detail=1),
                        information("DETAIL TEXT"),
                        movement(-1250, seq=1, detail=2, code="50101000", comm="DUBOIS"),
                        movement(200, seq=2, comm="REFUND"), closing=100000 - 3000 + 200)
    statement = only(data)
    assert [(e.amount, e.remittance_info) for e in statement.entries] == [
        (Decimal("-30.00"), "SALARIES MARCH"), (Decimal("2.00"), "REFUND")]
    assert statement.balance_check() is True


def test_transaction_code_and_bank_reference_are_kept():
    entry = only(statement_of(movement(100, code="00150000", ref="OL44483FW SCTOFBIONLO"), closing=100100)).entries[0]
    assert (entry.transaction_code, entry.bank_reference) == ("00150000", "OL44483FW SCTOFBIONLO")


def test_statement_id_is_account_paper_number_and_date():
    statement = only(statement_of(movement(100), closing=100100))
    assert statement.statement_id == f"{ACCOUNT}/042/2026-03-16"
    assert (statement.line, statement.closing_line, statement.statement_date) == (2, 4, date(2026, 3, 16))


def test_several_files_in_one_follow_in_order():
    data = coda(header(), old_balance(100), movement(50), new_balance(150), TRAILER,
                header(), old_balance(150, paper="043"), new_balance(150, when="170326"), TRAILER)
    statements = parse(data, "test.cod")
    assert [s.statement_id for s in statements] == [f"{ACCOUNT}/042/2026-03-16", f"{ACCOUNT}/043/2026-03-17"]
    assert [len(s.entries) for s in statements] == [1, 0]


def test_several_statements_under_one_header():
    data = coda(header(), old_balance(100), new_balance(100), old_balance(100, account="BE71096123456769"),
                new_balance(100, account="BE71096123456769"), TRAILER)
    assert [s.account for s in parse(data, "test.cod")] == [ACCOUNT, "BE71096123456769"]


def test_foreign_iban_structure_3_with_its_currency():
    data = coda(header(), old_balance(100, structure="3", account="NL91ABNA0417164300", currency="USD"),
                new_balance(100), TRAILER)
    statement = only(data)
    assert (statement.account, statement.currency) == ("NL91ABNA0417164300", "USD")


def test_foreign_account_number_structure_1():
    data = coda(header(), old_balance(100, structure="1", account="123-4567890-12", currency="CHF"),
                new_balance(100), TRAILER)
    assert (only(data).account, only(data).currency) == ("123-4567890-12", "CHF")


def test_version_1_reads_belgian_account_and_long_counterparty_name():
    v1_balance = record((1, "1"), (3, "052"), (6, "310123456789"), (19, "EUR"), (43, "1"), (44, money(10000)),
                        (59, "090306"))
    v1_counterparty = record((1, "23"), (3, "0001"), (7, "0000"), (11, "001234567890"), (48, "DE WITTE PAUL"),
                             (83, "EN ZONEN"))
    data = coda(header(version="1"), v1_balance, movement(2500, value="100306", entry="100306"), v1_counterparty,
                new_balance(-7500, when="100306"), TRAILER)
    statement = only(data)
    assert (statement.account, statement.opening_balance, statement.closing_balance) == (
        "310123456789", Decimal("-100.00"), Decimal("-75.00"))
    assert statement.entries[0].counterparty_name == "DE WITTE PAUL EN ZONEN"


def test_windows_1252_text_is_decoded():
    data = statement_of(movement(100), movement_2(), movement_3(ACCOUNT, "CAFÉ DE PARIS"), closing=100100)
    assert b"\xc9" in data
    assert only(data).entries[0].counterparty_name == "CAFÉ DE PARIS"


def test_crlf_stripped_trailing_blanks_blank_lines_and_dos_eof_mark_are_tolerated():
    records = [header(), old_balance(100), movement(50, comm="RENT"), new_balance(150), TRAILER]
    data = ("\r\n".join(r.rstrip() for r in records) + "\r\n\r\n\x1a").encode("ascii")
    statement = only(data)
    assert (statement.entries[0].remittance_info, statement.closing_balance) == ("RENT", Decimal("1.50"))


def test_file_without_line_breaks_is_cut_into_records():
    records = [header(), old_balance(100), movement(50), new_balance(150), TRAILER]
    assert only("".join(records).encode("ascii")).entries[0].line == 3


# ---------------------------------------------------------------- refused input


def test_missing_record_8_at_end_of_file_names_the_last_record():
    error = refused(coda(header(), old_balance(), movement(100), movement_2()))
    assert (error.line, error.message.split(":")[0]) == (4, "missing record 8 (new balance)")


def test_missing_record_8_before_the_next_header_is_refused():
    error = refused(coda(header(), old_balance(), movement(100), header(), old_balance(), new_balance(100000)))
    assert error.line == 3
    assert "header record 0 at line 4" in error.message


def test_unsupported_version_is_refused():
    error = refused(coda(header(version="3")))
    assert (error.line, error.message.split(" (")[0]) == (1, "unsupported CODA version 3")


def test_version_that_is_not_a_digit_is_refused_and_shown_quoted():
    error = refused(coda(header(version="\x00")))
    assert error.message.startswith("unsupported CODA version '\\x00'")


def test_amount_that_is_not_digits_is_refused():
    bad = movement(100)[:32] + "00000000001O000" + movement(100)[47:]
    error = refused(statement_of(bad))
    assert (error.line, "record 2.1 amount" in error.message, "'00000000001O000'" in error.message) == (3, True, True)


def test_sign_that_is_not_0_or_1_is_refused():
    bad = movement(100)[:31] + "-" + movement(100)[32:]
    assert "sign '-'" in refused(statement_of(bad)).message


def test_date_that_is_not_a_date_is_refused():
    error = refused(statement_of(movement(100, value="310226")))
    assert (error.line, "value date" in error.message) == (3, True)


def test_unknown_record_type_is_refused():
    error = refused(statement_of(record((1, "7"), (2, "SOMETHING"))))
    assert (error.line, "unknown record type '7'" in error.message) == (3, True)


def test_unknown_movement_article_is_refused():
    assert "unknown record type 2.4" in refused(statement_of(movement(100), record((1, "24")))).message


def test_continuation_without_movement_is_refused():
    error = refused(statement_of(movement_2()))
    assert (error.line, error.message) == (3, "record 2.2 without a movement record 2.1 before it")


def test_information_without_movement_is_refused():
    assert "information record 3.1 without a movement" in refused(statement_of(information("X"))).message


def test_movement_outside_a_statement_is_refused():
    error = refused(coda(header(), movement(100)))
    assert (error.line, "outside a statement" in error.message) == (2, True)


def test_unknown_account_structure_is_refused():
    assert "account structure '7'" in refused(coda(header(), old_balance(structure="7"))).message


def test_currency_that_is_not_iso_is_refused():
    assert "currency 'E1R'" in refused(coda(header(), old_balance(currency="E1R"), new_balance(0))).message


def test_empty_file_is_refused():
    assert refused(b"\n\n").message == "empty file: no CODA records"


def test_header_without_statement_is_refused():
    assert "no old-balance record 1" in refused(coda(header())).message


# ---------------------------------------------------------------- robustness

VALID = statement_of(movement(-500, comm="RENT MARCH"), movement_2(reference="E2E"),
                     movement_3(ACCOUNT, "LANDLORD"), information("EXTRA"),
                     movement(300, seq=2, comm="101" + "090933755493", comm_type="1"), closing=99800)


def _outcome(data: bytes) -> None:
    try:
        parse(data, "fuzz.cod")
    except StatementError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_parse_or_raise_statement_error(data):
    _outcome(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300).map(lambda tail: header().encode() + b"\n" + tail))
def test_header_followed_by_arbitrary_bytes_parse_or_raise_statement_error(data):
    _outcome(data)


def _mutate(data: bytes, draw) -> bytes:
    if not data:
        return data
    lines = data.split(b"\n")
    action = draw(st.sampled_from(["truncate", "flip", "delete", "duplicate"]))
    if action == "truncate":
        return data[:draw(st.integers(0, len(data)))]
    if action == "flip":
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    at = draw(st.integers(0, len(lines) - 1))
    if action == "delete":
        return b"\n".join(lines[:at] + lines[at + 1:])
    return b"\n".join(lines[:at + 1] + lines[at:])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutations_of_a_valid_file_parse_or_raise_statement_error(data):
    mutated = VALID
    for _ in range(data.draw(st.integers(1, 4))):
        mutated = _mutate(mutated, data.draw)
    _outcome(mutated)
