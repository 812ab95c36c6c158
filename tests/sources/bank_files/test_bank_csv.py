"""Bank CSV exports through profiles: sources.bank_files.bank_csv and the profile model schemas.bank_csv."""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.bank_csv import BankCsvProfile
from sources.bank_files.bank_csv import BUILTIN_PROFILES, parse
from sources.bank_files.model import StatementError
from tests.sources.bank_files.mutations import mutate

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "statements" / "csv"
HEADER = "bank_account,booking_date,value_date,amount,currency,counterparty_name,counterparty_iban,remittance_info," \
         "structured_ref\n"
ROW = "BE71096123456769,2026-03-02,2026-03-03,12.50,EUR,ACME NV,BE68 5390 0754 7034,Invoice 7,+++090/9337/55493+++\n"


def profile(base: str = "generic", **changes) -> BankCsvProfile:
    return BankCsvProfile(**{**BUILTIN_PROFILES[base].model_dump(), **changes})


def read(text: str, prof: BankCsvProfile | None = None, encoding: str = "utf-8"):
    return parse(text.encode(encoding), "bank.csv", prof or BUILTIN_PROFILES["generic"])


def refused(text: str | bytes, prof: BankCsvProfile | None = None) -> StatementError:
    data = text.encode() if isinstance(text, str) else text
    with pytest.raises(StatementError) as caught:
        parse(data, "bank.csv", prof or BUILTIN_PROFILES["generic"])
    return caught.value


# ---------------------------------------------------------------- built-in profiles


def test_at_least_five_real_banks_plus_generic_are_built_in():
    assert "generic" in BUILTIN_PROFILES and len(BUILTIN_PROFILES) >= 6


def test_every_built_in_profile_says_which_export_it_reads():
    assert all(p.name == key and len(p.description) > 40 for key, p in BUILTIN_PROFILES.items())


def test_every_built_in_profile_has_a_golden_case_with_the_same_settings():
    for name, builtin in BUILTIN_PROFILES.items():
        settings_file = GOLDEN / f"{name}.profile.toml"
        assert (GOLDEN / f"{name}.in").is_file(), name
        assert BankCsvProfile(**tomllib.loads(settings_file.read_text(encoding="utf-8"))) == builtin, name


def test_every_golden_case_parses_as_its_out_file_says():
    for path in sorted(GOLDEN.glob("*.in")):
        prof = BankCsvProfile(**tomllib.loads(path.with_suffix(".profile.toml").read_text(encoding="utf-8")))
        out = path.with_suffix(".out").read_text(encoding="utf-8")
        if out.startswith("error:"):
            with pytest.raises(StatementError):
                parse(path.read_bytes(), path.name, prof)
        else:
            assert len(parse(path.read_bytes(), path.name, prof)) == out.split("\n\n")[0].count("statement ")


# ---------------------------------------------------------------- statements


def test_one_statement_per_account_and_currency_in_order_of_appearance():
    other = ROW.replace("BE71096123456769", "BE61734041478017")
    result = read(HEADER + ROW + other + ROW.replace(",EUR,", ",USD,"))
    assert [(s.account, s.currency, len(s.entries)) for s in result] == [
        ("BE71096123456769", "EUR", 1), ("BE61734041478017", "EUR", 1), ("BE71096123456769", "USD", 1)]


def test_statement_id_is_account_and_first_to_last_booking_date():
    result = read(HEADER + ROW + ROW.replace("2026-03-02", "2026-03-09"))
    assert result[0].statement_id == "BE71096123456769-2026-03-02..2026-03-09"
    assert result[0].statement_date == date(2026, 3, 9)


def test_statement_id_names_the_currency_when_an_account_has_several():
    result = read(HEADER + ROW + ROW.replace(",EUR,", ",USD,"))
    assert [s.statement_id for s in result] == ["BE71096123456769-EUR-2026-03-02..2026-03-02",
                                                "BE71096123456769-USD-2026-03-02..2026-03-02"]


def test_without_balance_column_there_are_no_balances():
    (result,) = read(HEADER + ROW)
    assert (result.opening_balance, result.closing_balance, result.balance_check()) == (None, None, None)


def test_balance_after_gives_opening_and_closing():
    prof = profile(columns={**BUILTIN_PROFILES["generic"].columns, "balance_after": "balance"})
    text = HEADER.replace("\n", ",balance\n") + ROW.replace("\n", ",112.50\n") + ROW.replace("12.50", "-2.50") \
        .replace("\n", ",110.00\n")
    (result,) = read(text, prof)
    assert (result.opening_balance, result.closing_balance, result.balance_check()) == (
        Decimal("100.00"), Decimal("110.00"), True)


def test_inconsistent_running_balance_fails_the_balance_check():
    prof = profile(columns={**BUILTIN_PROFILES["generic"].columns, "balance_after": "balance"})
    text = HEADER.replace("\n", ",balance\n") + ROW.replace("\n", ",112.50\n") + ROW.replace("\n", ",999.00\n")
    (result,) = read(text, prof)
    assert result.balance_check() is False and result.closing_line == 3


def test_newest_first_rows_come_out_in_chronological_order_with_balances():
    prof = profile(newest_first=True, columns={**BUILTIN_PROFILES["generic"].columns, "balance_after": "balance"})
    newer = ROW.replace("2026-03-02", "2026-03-05").replace("12.50", "-2.50").replace("\n", ",110.00\n")
    (result,) = read(HEADER.replace("\n", ",balance\n") + newer + ROW.replace("\n", ",112.50\n"), prof)
    assert [e.booking_date.day for e in result.entries] == [2, 5]
    assert (result.opening_balance, result.closing_balance, result.closing_line) == (
        Decimal("100.00"), Decimal("110.00"), 2)


def test_entry_fields_are_read_and_cleaned():
    (result,) = read(HEADER + ROW)
    entry = result.entries[0]
    assert (entry.booking_date, entry.value_date, entry.amount, entry.counterparty_name, entry.counterparty_iban,
            entry.remittance_info, entry.structured_ref, entry.line) == (
        date(2026, 3, 2), date(2026, 3, 3), Decimal("12.50"), "ACME NV", "BE68539007547034", "Invoice 7",
        "+++090/9337/55493+++", 2)


def test_quoted_field_with_line_breaks_keeps_line_numbers_right():
    text = HEADER + ROW.replace("Invoice 7", '"Invoice\n7"') + ROW
    (result,) = read(text)
    assert [e.line for e in result.entries] == [2, 4] and result.entries[0].remittance_info == "Invoice 7"


def test_empty_value_date_is_none():
    (result,) = read(HEADER + ROW.replace("2026-03-03", ""))
    assert result.entries[0].value_date is None


def test_header_only_file_has_no_statements():
    assert read(HEADER) == []


def test_blank_lines_are_skipped():
    (result,) = read(HEADER + "\n" + ROW + ",,,,,,,,\n" + ROW)
    assert [e.line for e in result.entries] == [3, 5]


# ---------------------------------------------------------------- layouts


def test_header_is_found_below_a_preamble_of_any_length():
    (result,) = read("Account statement\nExported 2026-03-06;;\n\n" + HEADER + ROW)
    assert result.entries[0].line == 5


def test_skip_lines_skips_a_preamble_that_looks_like_a_header():
    (result,) = read(HEADER.upper() + HEADER + ROW, profile(skip_lines=1))
    assert result.entries[0].line == 3


def test_header_names_match_ignoring_case_and_whitespace():
    (result,) = read(HEADER.upper().replace("AMOUNT", "  Amount ") + ROW)
    assert result.entries[0].amount == Decimal("12.50")


def test_trailing_delimiter_is_not_a_ragged_row():
    (result,) = read(HEADER.replace("\n", ",\n") + ROW.replace("\n", ",\n") + ROW)
    assert len(result.entries) == 2


def test_headerless_profile_reads_columns_by_number():
    prof = BankCsvProfile(header=False, delimiter=";", account="NL20INGB0001234567", currency="EUR",
                          columns={"booking_date": "2", "amount": "1", "remittance_info": ["3", "4"]})
    (result,) = read("-1.50;2026-03-02;coffee;bar\n", prof)
    assert (result.entries[0].amount, result.entries[0].remittance_info) == (Decimal("-1.50"), "coffee bar")


def test_list_column_takes_the_first_non_empty_value():
    prof = profile(columns={**BUILTIN_PROFILES["generic"].columns, "counterparty_name": ["payee", "payer"]})
    text = HEADER.replace("counterparty_name", "payee").replace("\n", ",payer\n")
    (result,) = read(text + ROW.replace("ACME NV", "").replace("\n", ",JOHN\n"), prof)
    assert result.entries[0].counterparty_name == "JOHN"


def test_list_column_may_name_headers_of_other_export_versions():
    prof = profile(columns={**BUILTIN_PROFILES["generic"].columns, "amount": ["Betrag", "amount"]})
    assert read(HEADER + ROW, prof)[0].entries[0].amount == Decimal("12.50")


def test_remittance_columns_are_joined_without_repeating_a_text():
    prof = profile(columns={**BUILTIN_PROFILES["generic"].columns,
                            "remittance_info": ["remittance_info", "structured_ref", "counterparty_name"]})
    (result,) = read(HEADER + ROW.replace("Invoice 7", "Invoice 7 ACME NV"), prof)
    assert result.entries[0].remittance_info == "Invoice 7 ACME NV +++090/9337/55493+++"


def test_skip_when_leaves_out_pending_rows():
    prof = profile(columns={**BUILTIN_PROFILES["generic"].columns}, skip_when={"structured_ref": ["PENDING"]})
    (result,) = read(HEADER + ROW.replace("+++090/9337/55493+++", "pending") + ROW, prof)
    assert [e.line for e in result.entries] == [3]


def test_account_from_the_profile_when_the_file_has_none():
    columns = {k: v for k, v in BUILTIN_PROFILES["generic"].columns.items() if k != "account"}
    (result,) = read(HEADER + ROW, profile(columns=columns, account="NL91 ABNA 0417 1643 00"))
    assert result.account == "NL91ABNA0417164300"


def test_account_name_that_is_no_iban_keeps_its_spaces():
    (result,) = read(HEADER + ROW.replace("BE71096123456769", "EUR  Main"))
    assert result.account == "EUR Main"


def test_sepa_notprovided_is_no_end_to_end_id():
    prof = profile(columns={**BUILTIN_PROFILES["generic"].columns, "end_to_end_id": "structured_ref"})
    assert read(HEADER + ROW.replace("+++090/9337/55493+++", "NOTPROVIDED"), prof)[0].entries[0].end_to_end_id == ""


# ---------------------------------------------------------------- amounts and dates


def test_decimal_comma_with_thousands_grouping():
    prof = profile(delimiter=";", decimal=",", thousands=".")
    assert read((HEADER + ROW).replace(",", ";").replace("12.50", "-1.234,56"), prof)[0].entries[0].amount == \
        Decimal("-1234.56")


def test_space_grouped_thousands_including_no_break_space():
    prof = profile(delimiter=";", decimal=",", thousands=" ")
    text = (HEADER + ROW).replace(",", ";").replace("12.50", "1\u00a0234,56")
    assert read(text, prof)[0].entries[0].amount == Decimal("1234.56")


def test_trailing_minus_is_a_sign():
    assert read(HEADER + ROW.replace("12.50", "12.50-"))[0].entries[0].amount == Decimal("-12.50")


def test_indicator_sign_with_af_bij():
    prof = BUILTIN_PROFILES["ing_nl"]
    head = '"Datum";"Naam / Omschrijving";"Rekening";"Tegenrekening";"Code";"Af Bij";"Bedrag (EUR)";' \
           '"Mutatiesoort";"Mededelingen";"Saldo na mutatie";"Tag"\n'
    row = '"20260305";"X";"NL20INGB0001234567";"";"BA";"{}";"23,45";"";"";"1,00";""\n'
    result = read(head + row.format("Af") + row.format("bij"), prof)
    assert [e.amount for e in result[0].entries] == [Decimal("23.45"), Decimal("-23.45")]


def test_debit_and_credit_columns_with_a_debit_written_negative():
    prof = BankCsvProfile(account="X1", currency="EUR", sign="debit_credit",
                          columns={"booking_date": "date", "debit": "debet", "credit": "credit"})
    result = read("date,debet,credit\n2026-03-02,-3.40,\n2026-03-02,,5.00\n2026-03-02,2.00,0\n", prof)
    assert [e.amount for e in result[0].entries] == [Decimal("-3.40"), Decimal("5.00"), Decimal("-2.00")]


def test_invert_sign_turns_money_out_shown_positive():
    (result,) = read(HEADER + ROW, profile(invert_sign=True))
    assert result.entries[0].amount == Decimal("-12.50")


def test_several_date_formats_are_tried_in_order():
    prof = profile(date_format=["%d.%m.%y", "%d.%m.%Y"])
    text = HEADER + ROW.replace("2026-03-02", "02.03.26").replace("2026-03-03", "03.03.2026")
    entry = read(text, prof)[0].entries[0]
    assert (entry.booking_date, entry.value_date) == (date(2026, 3, 2), date(2026, 3, 3))


# ---------------------------------------------------------------- encodings


def test_second_encoding_reads_what_the_first_cannot():
    prof = profile(encoding=["utf-8", "cp1252"])
    assert read(HEADER + ROW.replace("ACME", "Caf\u00e9"), prof, "cp1252")[0].entries[0].counterparty_name == \
        "Caf\u00e9 NV"


def test_byte_order_mark_is_dropped():
    (result,) = parse(b"\xef\xbb\xbf" + (HEADER + ROW).encode(), "bank.csv", BUILTIN_PROFILES["generic"])
    assert result.account == "BE71096123456769"


def test_undecodable_bytes_are_an_error_naming_the_line():
    error = refused((HEADER + ROW + ROW.replace("ACME", "Caf\u00e9")).encode("cp1252"))
    assert error.line == 3 and "0xE9" in error.message


# ---------------------------------------------------------------- refused files


def test_bad_amount_names_line_column_and_value():
    prof = profile(delimiter=";", decimal=",", columns={**BUILTIN_PROFILES["generic"].columns,
                                                          "amount": "Bedrag (EUR)"})
    rows = ROW.replace("12.50", "12#50") + ROW.replace("12.50", "12#3#4")
    text = (HEADER.replace("amount", "Bedrag (EUR)") + rows).replace(",", ";").replace("#", ",")
    error = refused(text, prof)
    assert str(error).startswith("bank.csv: line 3: column 'Bedrag (EUR)': '12,3,4' is not an amount")


def test_badly_grouped_thousands_are_refused():
    prof = profile(delimiter=";", decimal=",", thousands=".")
    assert "'1.23.4,00'" in refused((HEADER + ROW).replace(",", ";").replace("12.50", "1.23.4,00"), prof).message


def test_wrong_date_format_names_line_column_and_value():
    error = refused(HEADER + ROW.replace("2026-03-02", "02/03/2026"))
    assert error.line == 2 and "column 'booking_date': '02/03/2026' is not a date" in error.message
    assert "'%Y-%m-%d'" in error.message


def test_impossible_date_is_refused():
    assert "'2026-02-30'" in refused(HEADER + ROW.replace("2026-03-02", "2026-02-30")).message


def test_empty_booking_date_without_value_date_is_refused():
    text = HEADER + ROW.replace("2026-03-02", "").replace("2026-03-03", "")
    assert "column 'booking_date': ''" in refused(text).message


def test_empty_booking_date_falls_back_to_the_value_date():
    (result,) = read(HEADER + ROW.replace("2026-03-02", ""))
    assert result.entries[0].booking_date == date(2026, 3, 3)


def test_empty_amount_is_refused():
    assert "column 'amount': '' is empty" in refused(HEADER + ROW.replace("12.50", "")).message


def test_missing_header_column_is_named():
    error = refused(HEADER.replace("amount", "amt") + ROW)
    assert error.line == 1 and "column 'amount'" in error.message and "missing" in error.message


def test_missing_header_column_of_a_list_names_the_alternatives():
    prof = profile(columns={**BUILTIN_PROFILES["generic"].columns, "counterparty_name": ["payee", "payer"]})
    assert "'payee' or 'payer'" in refused(HEADER + ROW, prof).message


def test_ragged_row_is_refused():
    error = refused(HEADER + ROW + "BE71096123456769,2026-03-02,2026-03-03,12.50\n")
    assert error.line == 3 and "ragged row: 4 fields" in error.message


def test_extra_field_with_text_is_a_ragged_row():
    assert "ragged row: 10 fields" in refused(HEADER + ROW.replace("\n", ",oops\n")).message


def test_empty_file_is_refused():
    assert "empty" in refused(b"  \n\n").message


def test_unknown_direction_marker_is_refused():
    prof = BankCsvProfile(account="X1", currency="EUR", sign="indicator",
                          columns={"booking_date": "date", "amount": "amount", "direction": "dc"})
    error = refused("date,amount,dc\n2026-03-02,1.00,X\n", prof)
    assert "column 'dc': 'X' is not a debit/credit marker" in error.message


def test_debit_and_credit_both_empty_is_refused():
    prof = BankCsvProfile(account="X1", currency="EUR", sign="debit_credit",
                          columns={"booking_date": "date", "debit": "debet", "credit": "credit"})
    assert "both empty" in refused("date,debet,credit\n2026-03-02,,\n", prof).message


def test_unknown_currency_is_refused():
    assert "column 'currency': 'EURO' is not an ISO 4217" in refused(HEADER + ROW.replace(",EUR,", ",EURO,")).message


def test_empty_account_without_fallback_is_refused():
    assert "column 'bank_account'" in refused(HEADER + ROW.replace("BE71096123456769", "")).message


def test_oversized_field_is_an_error_not_a_crash():
    assert "not CSV" in refused(HEADER + ROW.replace("Invoice 7", "x" * 200_000)).message


# ---------------------------------------------------------------- the profile model


def test_profile_accepts_one_encoding_or_several():
    assert profile(encoding="cp1252").encodings() == ("cp1252",)
    assert profile(encoding=["utf-8", "cp1252"]).encodings() == ("utf-8", "cp1252")


def test_profile_refuses_an_unknown_encoding():
    with pytest.raises(ValidationError, match="not a known character encoding"):
        profile(encoding="klingon")


def test_profile_refuses_a_date_format_without_day_month_and_year():
    with pytest.raises(ValidationError, match="date_format"):
        profile(date_format="%d.%m")


def test_profile_without_header_needs_column_numbers():
    with pytest.raises(ValidationError, match="1-based numbers"):
        profile(header=False)


def test_profile_refuses_an_unknown_currency():
    with pytest.raises(ValidationError, match="ISO 4217"):
        BankCsvProfile(account="X", currency="EURO", columns={"booking_date": "d", "amount": "a"})


# ---------------------------------------------------------------- robustness

VALID = (HEADER + ROW + ROW.replace("12.50", "-3.00").replace(",EUR,", ",USD,") + ROW).encode()
PROFILES = [BUILTIN_PROFILES["generic"], BUILTIN_PROFILES["ing_nl"], BUILTIN_PROFILES["belfius"],
            BankCsvProfile(header=False, account="X", currency="EUR", sign="debit_credit",
                           columns={"booking_date": "1", "debit": "2", "credit": "3"})]


def outcome(data: bytes, prof: BankCsvProfile) -> None:
    try:
        parse(data, "fuzz.csv", prof)
    except StatementError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(PROFILES))
def test_arbitrary_bytes_parse_or_raise_statement_error(data, prof):
    outcome(data, prof)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_valid_file_parses_or_raises_statement_error(data):
    mutated = mutate(data, VALID, [b'"', b",", b"\n", b"\r", b"\x00", b"\xff", b"-", b"\xef\xbb\xbf"])
    outcome(mutated, BUILTIN_PROFILES["generic"])
