"""Counterparty names as banks print them, reduced to something that can be compared.

The same payer is ``Société Générale S.A.`` on the invoice, ``SOCIETE GENERALE SA`` in
one bank file and ``SOCIETE GENERALE`` (a 16-character field) in another; a person is
``Claire Dubois`` in the ledger and ``DUBOIS CLAIRE`` or ``C. DUBOIS`` on the statement.
:func:`normalise_name` removes what differs for no reason (case, accents, punctuation,
legal forms, a leading article); :func:`name_similarity` scores what is left.

:func:`normalise_name_expr` is the same normalisation as a Polars expression, for a
million names at once; a property test keeps the two equal.

Pure functions, no IO.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import polars as pl

__all__ = [
    "LEGAL_FORMS",
    "LEADING_ARTICLES",
    "name_similarity",
    "name_tokens",
    "normalise_iban",
    "normalise_iban_expr",
    "normalise_name",
    "normalise_name_expr",
    "same_iban",
]

# Letters NFKD leaves alone (no decomposition), spelt the way banks' ASCII character
# sets spell them. Both cases are listed: the map runs before upper-casing.
_SPECIAL_LETTERS = {
    "ß": "SS", "ẞ": "SS", "Æ": "AE", "æ": "AE", "Ø": "O", "ø": "O", "Œ": "OE", "œ": "OE",
    "Ł": "L", "ł": "L", "Đ": "D", "đ": "D", "Ð": "D", "ð": "D", "Þ": "TH", "þ": "TH",
    "Ħ": "H", "ħ": "H", "ı": "I", "ĸ": "K", "Ŋ": "N", "ŋ": "N", "Ŧ": "T", "ŧ": "T", "ƒ": "F",
}

# Legal forms, written as they look after punctuation became spaces: "S.A." is "S A",
# "A/S" is "A S", "Sp. z o.o." is "SP Z O O". Removed wherever they stand as whole words.
# Two-letter forms are only listed spelt out with dots where that spelling is in real
# use, since initials of people ("A B SMITH") look the same.
LEGAL_FORMS: tuple[str, ...] = (
    # France, Belgium, Luxembourg, Switzerland
    "SA", "S A", "SARL", "S A R L", "SA RL", "SAS", "S A S", "SASU", "EURL", "E U R L", "SNC", "S N C", "SCS",
    "SCA", "SCI", "S C I", "SCP", "SCM", "SCOP", "SELARL", "SELAS", "GIE", "SRL", "S R L", "SPRL", "S P R L",
    "SPRLU", "SCRL", "S C R L", "SC", "ASBL", "A S B L", "SAGL", "SE",
    # Netherlands, Flanders
    "BV", "B V", "NV", "N V", "BVBA", "B V B A", "CVBA", "C V B A", "CV", "C V", "VOF", "V O F", "COMMV", "VZW",
    # Germany, Austria
    "GMBH", "MBH", "GESMBH", "GMBH CO KG", "AG", "KG", "KGAA", "OHG", "O H G", "UG", "HAFTUNGSBESCHRANKT", "EV",
    "E V", "EK", "E K", "GBR", "PARTG",
    # English-speaking
    "LTD", "LIMITED", "PLC", "LLP", "L L P", "LLC", "L L C", "LP", "L P", "INC", "INCORPORATED", "CORP",
    "CORPORATION", "CO", "COMPANY", "PTY", "PTY LTD", "DAC", "CLG",
    # Nordic and Baltic
    "AB", "AS", "A S", "ASA", "APS", "IVS", "AMBA", "OY", "OYJ", "KY", "OU", "UAB", "SIA",
    # Southern Europe
    "SPA", "S P A", "SAPA", "SRLS", "SL", "S L", "SLU", "S L U", "SAU", "S A U", "SLL", "SLNE", "LDA",
    # Central and Eastern Europe
    "KFT", "ZRT", "NYRT", "SRO", "S R O", "SPOL S R O", "SPOL SRO", "VOS", "SP Z O O", "SP ZOO", "SPZOO",
    "SP J", "SP K", "DOO", "D O O", "DOOEL",
)
LEADING_ARTICLES: tuple[str, ...] = ("THE", "LA", "LE", "DE", "DIE", "DER")

_NON_ALNUM = "[^A-Z0-9]+"
# Tokens are separated by two spaces and the string padded with one on each side
# before this runs, so every token has a space of its own on both sides: adjacent
# forms ("GMBH CO KG") all match in one pass, without look-arounds, which the Polars
# regex engine does not have. Longest first, so "S A R L" wins over "S A".
_LEGAL_PATTERN = " (?:" + "|".join(
    f.replace(" ", "  ") for f in sorted(set(LEGAL_FORMS), key=lambda f: (-len(f), f))
) + ") "
_ARTICLE_PATTERN = "^(?:(?:" + "|".join(LEADING_ARTICLES) + ") )+"  # all of them: "LA LA 0" -> "0", idempotent

_NON_ALNUM_RE = re.compile(_NON_ALNUM)
_LEGAL_RE = re.compile(_LEGAL_PATTERN)
# Removing a legal form can join two words into another ("S AS A" -> "S A"): removal repeats, at most
# this often (real names need one pass; the bound keeps the Polars expression finite).
LEGAL_PASSES = 4
_ARTICLE_RE = re.compile(_ARTICLE_PATTERN)
_SPACES_RE = re.compile(" +")

# Similarity scale (see name_similarity)
REORDERED = 0.95
TRUNCATED_MIN, TRUNCATED_SPAN = 0.90, 0.05
MIN_TRUNCATED = 6
PAIRED_MAX = 0.95
PARTIAL_FACTOR = 0.75
INITIAL, ABBREVIATION, TYPO = 0.7, 0.75, 0.8


# --------------------------------------------------------------------------- normalisation

@lru_cache(maxsize=1)
def _marks() -> list[tuple[int, int]]:
    """Code point ranges of combining marks (category M*) in Python's Unicode database.

    Computed here, not taken from the regex engine's ``\\p{M}``, so that the Python and
    the Polars normalisation delete exactly the same characters even when Python's
    Unicode version (14.0 on 3.11) is older than the Rust crates' (~0.1 s, once)."""
    ranges: list[tuple[int, int]] = []
    for code in range(0x110000):
        if unicodedata.category(chr(code))[0] == "M":
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return ranges


@lru_cache(maxsize=1)
def _fold_table() -> dict[int, str | None]:
    """str.translate table: marks deleted, special letters spelt out."""
    table: dict[int, str | None] = {code: None for low, high in _marks() for code in range(low, high + 1)}
    table.update({ord(k): v for k, v in _SPECIAL_LETTERS.items()})
    return table


@lru_cache(maxsize=1)
def _mark_class() -> str:
    """The same marks as a regex class for Polars (Rust syntax)."""
    return "[" + "".join(f"\\x{{{low:X}}}-\\x{{{high:X}}}" for low, high in _marks()) + "]"


@lru_cache(maxsize=65_536)
def _forms(text: str) -> tuple[str, str, str]:
    """(plain, core, normalised): ``plain`` is upper-case ASCII words with nothing removed
    (what a bank prints, and truncates); ``core`` has the legal forms removed but keeps a
    leading article; ``normalised`` is normalise_name."""
    if not text.isascii():  # ASCII has nothing to decompose, no marks, no special letters
        text = unicodedata.normalize("NFKD", text).translate(_fold_table())
    plain = _NON_ALNUM_RE.sub(" ", text.upper()).strip(" ")
    if not plain:
        return "", "", ""
    core = plain
    for _ in range(LEGAL_PASSES):  # removing "AS" from "S AS A" leaves "S A", a legal form again
        removed = _SPACES_RE.sub(" ", _LEGAL_RE.sub(" ", f" {core.replace(' ', '  ')} ")).strip(" ")
        if removed == core:
            break
        core = removed
    if not core or core in LEADING_ARTICLES:  # only legal forms and articles: keep them all
        return plain, plain, plain
    return plain, core, _ARTICLE_RE.sub("", core, count=1)


def normalise_name(text: str | None) -> str:
    """A counterparty name reduced to upper-case ASCII words separated by single spaces.

    In order:

    1. NFKD, combining marks dropped (``é`` -> ``e``), letters without a decomposition
       spelt out (``ß`` -> ``SS``, ``Æ`` -> ``AE``, ``Ø`` -> ``O``, ``Œ`` -> ``OE``,
       ``Ł`` -> ``L``, ``Đ``/``Ð`` -> ``D``, ``Þ`` -> ``TH``, …), upper case;
    2. everything but ``A-Z`` and ``0-9`` (punctuation, ``&``, other scripts) becomes a
       space, so ``S.A.`` reads ``S A`` and ``A/S`` reads ``A S``;
    3. legal forms (:data:`LEGAL_FORMS`: SA, SARL, GMBH, GMBH & CO KG, BV, NV, LTD, INC,
       AB, AS, A/S, OY, SPA, SL, KFT, SRO, SP Z O.O., PTY LTD, …) are removed wherever they
       stand as whole words;
    4. leading articles (THE, LA, LE, DE, DIE, DER) are removed when other words follow.

    A name made only of legal forms and articles (``SA``, ``The Company Ltd``) keeps all
    its words (``THE COMPANY LTD``): an empty name would match nothing, or everything.

    "" for None, blank, or a name with no Latin letter or digit at all."""
    if not text:
        return ""
    return _forms(text)[2]


def name_tokens(text: str | None) -> list[str]:
    """The words of the normalised name, in order ([] for an empty name)."""
    name = normalise_name(text)
    return name.split(" ") if name else []


def normalise_name_expr(expr: pl.Expr) -> pl.Expr:
    """:func:`normalise_name` as a Polars expression (null -> ""), step for step.

    Equal to the Python function for every string made of characters assigned in
    Python's Unicode database (property-tested): the mark set comes from Python, and
    NFKD mappings of assigned characters never change between Unicode versions.

    The intermediate values travel as struct fields: a field is computed once and read
    as often as needed, where a plain sub-expression used twice would be computed twice
    in an eager ``select`` (no common-subexpression elimination there)."""
    text = (
        expr.fill_null("")
        .str.normalize("NFKD")
        .str.replace_all(_mark_class(), "")
        .str.replace_many(_SPECIAL_LETTERS)
        .str.to_uppercase()
    )
    plain = text.str.replace_all(_NON_ALNUM, " ").str.strip_chars(" ")
    field_plain, field_core = pl.field("plain"), pl.field("core")
    core = field_plain
    for _ in range(LEGAL_PASSES):  # the same passes as the Python function (each a no-op once nothing is left)
        padded = pl.concat_str([pl.lit(" "), core.str.replace_all(" ", "  ", literal=True), pl.lit(" ")])
        core = padded.str.replace_all(_LEGAL_PATTERN, " ").str.replace_all(" +", " ").str.strip_chars(" ")
    only_forms = (field_core == "") | field_core.is_in(LEADING_ARTICLES)
    name = pl.when(only_forms).then(field_plain).otherwise(field_core.str.replace(_ARTICLE_PATTERN, ""))
    out = (
        pl.struct(plain.alias("plain"))
        .struct.with_fields(core.alias("core"))
        .struct.with_fields(name.alias("name"))
        .struct.field("name")
    )
    output_name = expr.meta.output_name(raise_if_undetermined=False)  # keep the input's name, like str.* does
    return out if output_name is None else out.alias(output_name)


# --------------------------------------------------------------------------- similarity

def name_similarity(a: str | None, b: str | None) -> float:
    """How likely two printed names are one counterparty, 0..1 (symmetric).

    On the normalised names (see :func:`normalise_name`):

    * 1.0   equal;
    * 0.95  the same words in another order (``DUBOIS CLAIRE`` / ``Claire Dubois``), or
            the same letters spaced differently (``MC DONALD`` / ``McDonald``);
    * 0.90..0.95  one is a truncation of the other (bank name fields stop at 18, 35 or
            70 characters) at a word or a character boundary, the shorter keeping at
            least 6 letters or digits; higher the more of the longer it keeps. Checked on
            the normalised names and on the names with their legal forms (a field can
            stop inside ``GMBH``). A short name that is the start of another word
            (``MARTIN`` / ``MARTINEZ``) scores the same: truncation cannot be told apart;
    * up to 0.95  every word of each side pairs with one of the other, some only
            approximately: an initial (``C`` / ``CLAIRE``) counts 0.7, an abbreviation
            (a prefix of 4+ letters) 0.75, one typo in words of 5+ letters 0.8, and the
            score is the Dice coefficient 2·Σ/(n₁+n₂): ``C DUBOIS`` / ``Claire Dubois`` = 0.85;
    * below 0.75  some words have no partner: 0.75 × the same Dice coefficient
            (``ACME TRADING`` / ``ACME EUROPE TRADING`` = 0.6);
    * 0.0   nothing shared, or either name empty.

    Names are also compared with their leading article kept, as a word like any other
    (``DE VRIES JAN`` / ``Jan de Vries`` = 0.95), and the best score counts.

    The engine's default threshold (0.8) thus accepts the first four kinds and never
    a partial overlap alone."""
    first, second = sorted((a or "", b or ""))  # one order for both calls: symmetric by construction
    plain_a, core_a, name_a = _forms(first) if first else ("", "", "")
    plain_b, core_b, name_b = _forms(second) if second else ("", "", "")
    if not name_a or not name_b:
        return 0.0
    if name_a == name_b:
        return 1.0
    score = max(_compare(name_a, name_b), _truncation(plain_a, plain_b))
    if core_a != name_a or core_b != name_b:  # "DE VRIES JAN" / "Jan de Vries": the article is a word here
        score = max(score, _compare(core_a, core_b))
    return score


def _compare(a: str, b: str) -> float:
    """The scale of name_similarity on two non-empty forms of the names."""
    if a.replace(" ", "") == b.replace(" ", ""):
        return REORDERED
    tokens_a, tokens_b = a.split(" "), b.split(" ")
    if sorted(tokens_a) == sorted(tokens_b):
        return REORDERED
    return max(_truncation(a, b), _paired(tokens_a, tokens_b))


def _truncation(a: str, b: str) -> float:
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    if short == long or not long.startswith(short):
        return 0.0
    kept, total = len(short.replace(" ", "")), len(long.replace(" ", ""))
    if kept < MIN_TRUNCATED:
        return 0.0
    return TRUNCATED_MIN + TRUNCATED_SPAN * kept / total


def _token_weight(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if len(a) == 1 or len(b) == 1:
        return INITIAL if a[0] == b[0] and len(a) != len(b) else 0.0
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    if len(short) >= 4 and long.startswith(short):
        return ABBREVIATION
    if len(short) >= 5 and _one_edit(a, b):
        return TYPO
    return 0.0


def _paired(tokens_a: list[str], tokens_b: list[str]) -> float:
    """Greedy pairing of the words, best pairs first (ties by position)."""
    candidates = sorted(
        (-w, i, j)
        for i, x in enumerate(tokens_a)
        for j, y in enumerate(tokens_b)
        if (w := _token_weight(x, y)) > 0
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    total = 0.0
    for negative, i, j in candidates:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            total -= negative
    dice = 2 * total / (len(tokens_a) + len(tokens_b))
    if len(used_a) == len(tokens_a) and len(used_b) == len(tokens_b):
        return min(dice, PAIRED_MAX)
    return PARTIAL_FACTOR * dice


def _one_edit(a: str, b: str) -> bool:
    """One substituted, inserted or deleted character, or two adjacent ones swapped."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diffs) == 1 or (
            len(diffs) == 2 and diffs[1] == diffs[0] + 1 and a[diffs[0]] == b[diffs[1]] and a[diffs[1]] == b[diffs[0]]
        )
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    return short[i:] == long[i + 1:]


# --------------------------------------------------------------------------- IBAN

def normalise_iban(text: str | None) -> str | None:
    """Upper case, everything but letters and digits removed (spaces, dashes, dots);
    None when nothing is left."""
    if not text:
        return None
    return _NON_ALNUM_RE.sub("", text.upper()) or None


def same_iban(a: str | None, b: str | None) -> bool:
    """The same account, however it is spaced or cased; an empty IBAN equals nothing."""
    left = normalise_iban(a)
    return left is not None and left == normalise_iban(b)


def normalise_iban_expr(expr: pl.Expr) -> pl.Expr:
    """:func:`normalise_iban` as a Polars expression: empty -> null, so it never joins."""
    out = expr.str.to_uppercase().str.replace_all(_NON_ALNUM, "")
    return pl.when(out.str.len_chars() > 0).then(out)
