"""Document numbers as people write them, reduced to keys that can be joined.

An invoice printed ``INV-2024-00123`` comes back in remittance text as
``inv 2024/123``, ``Invoice 202400123``, ``INV202400123`` or ``2024-00123``.
Each document number gets three keys, and every run of one to three adjacent
"atoms" (alphanumeric runs) of the free text gets the same three, so a single
hash join finds every document a remittance mentions:

* ``F:`` *full*: letters and digits, upper case, separators removed
  (``INV202400123``) — only for numbers that mix letters and digits, where it
  is specific enough to trust alone;
* ``G:`` *groups*: the digit groups with their leading zeros removed, joined by
  ``-`` (``2024-123``) — survives dropped prefixes, other separators and dropped
  leading zeros;
* ``D:`` *digits*: all digits with leading zeros removed (``202400123``) —
  survives a number written without separators;
* ``O:`` *groups in any order*: ``2024-123`` also for ``123/2024``;
* ``L:`` *last group*: the running number alone (``123`` of ``INV-2024-00123``, at
  least six digits), as people quote it when they drop the prefix and the year.

Digit-only keys can coincide with other numbers in the text (customer numbers,
dates), so they count as *weak* unless long; the engine then wants the amount or
the partner to agree as well (see ``engine``).
"""

from __future__ import annotations

import polars as pl

MAX_WINDOW = 3  # atoms joined into one candidate number: "INV 2024 00123"
MIN_DIGITS = 4  # shorter digit keys are too common to mean anything
MIN_LAST = 6  # a running number quoted alone must be at least this long
STRONG_DIGITS = 8  # a digit-only key this long is as specific as a printed reference


def _strip_groups(expr: pl.Expr) -> pl.Expr:
    """Digit groups without leading zeros, joined by '-': 'F2024/00123' -> '2024-123'."""
    groups = expr.str.replace_all(r"[^0-9]+", "-").str.strip_chars("-")
    return groups.str.replace_all(r"(^|-)0+([0-9])", "${1}${2}")


def document_keys(items: pl.DataFrame, column: str = "document_number") -> pl.DataFrame:
    """(item_idx, key, strength) for every key of each document number.

    ``strength`` is 2 for keys that identify a document on their own, 1 for keys
    that need the amount or the partner to agree."""
    base = items.select(
        "item_idx",
        pl.col(column).str.to_uppercase().str.replace_all(r"[^0-9A-Z]+", "").alias("full"),
        _strip_groups(pl.col(column)).alias("groups"),
    ).with_columns(
        pl.col("full").str.replace_all(r"[^0-9]+", "").str.strip_chars_start("0").alias("digits"),
        pl.col("groups").str.split("-").list.last().alias("last"),
    )
    return _keys(base)


def _keys(base: pl.DataFrame, ordered: bool = True) -> pl.DataFrame:
    """The keys of a frame with full/groups/digits/last columns, long format (other columns,
    such as a window's span, are kept). Each row gives at most one key of each kind, so no
    (row, key) pair repeats."""
    keep = [c for c in base.columns if c not in ("full", "groups", "digits", "last")]
    base = base.with_columns(
        pl.col("digits").str.len_chars().alias("_nd"),
        pl.col("groups").str.replace_all("-", "").str.len_chars().alias("_ng"),
        pl.col("groups").str.contains("-").alias("_multi"),
    )
    group_strength = pl.when(pl.col("_ng") >= STRONG_DIGITS - 2).then(2).otherwise(1).cast(pl.Int8)
    full = base.filter(pl.col("full").str.contains(r"[A-Z]") & pl.col("full").str.contains(r"[0-9]")).select(
        *keep, ("F:" + pl.col("full")).alias("key"), pl.lit(2, pl.Int8).alias("strength"))
    grouped = base.filter(pl.col("_multi") & (pl.col("_ng") >= MIN_DIGITS + 1))
    groups = grouped.select(*keep, ("G:" + pl.col("groups")).alias("key"), group_strength.alias("strength"))
    digits = base.filter(pl.col("_nd") >= MIN_DIGITS).select(
        *keep, ("D:" + pl.col("digits")).alias("key"),
        pl.when(pl.col("_nd") >= STRONG_DIGITS).then(2).otherwise(1).cast(pl.Int8).alias("strength"))
    frames = [full, groups, digits]
    if ordered:
        frames.append(grouped.select(
            *keep, ("O:" + pl.col("groups").str.split("-").list.sort().list.join("-")).alias("key"),
            group_strength.alias("strength")))
    frames.append(base.filter(pl.col("last").str.len_chars() >= MIN_LAST).select(
        *keep, ("L:" + pl.col("last")).alias("key"), pl.lit(1, pl.Int8).alias("strength")))
    return pl.concat(frames)


def atoms(text: pl.DataFrame, column: str = "text") -> pl.DataFrame:
    """One row per alphanumeric run of each line's free text: (line_idx, pos, atom)."""
    found = pl.col(column).str.extract_all(r"[0-9A-Za-z]+")
    return (
        text.select("line_idx", found.alias("atom"), pl.int_ranges(0, found.list.len(), dtype=pl.Int32).alias("pos"))
        .explode("atom", "pos")
        .drop_nulls("atom")
    )


def text_keys(text: pl.DataFrame, column: str = "text") -> pl.DataFrame:
    """(line_idx, start, end, key, strength) for every run of 1..3 atoms of each line's text.

    Windows must end on an atom with a digit (document numbers do); the digit
    keys also need every atom of the window to carry digits, since a prefix word
    adds nothing to them. ``start``/``end`` are the window's first and last atom:
    keys from overlapping windows may be one mention of one document."""
    parts = atoms(text, column).with_columns(pl.col("atom").str.to_uppercase())
    digit = parts["atom"].str.contains(r"[0-9]")
    same_line = [pl.Series([True] * parts.height, dtype=pl.Boolean)]
    shifted = [parts["atom"]]
    has_digit = [digit]
    for step in range(1, MAX_WINDOW):
        shifted.append(parts["atom"].shift(-step))
        has_digit.append(digit.shift(-step))
        same_line.append(parts["line_idx"].shift(-step) == parts["line_idx"])
    frames = []
    for width in range(1, MAX_WINDOW + 1):
        ok = same_line[0]
        for i in range(1, width):
            ok = ok & same_line[i].fill_null(False)
        ok = ok & has_digit[width - 1].fill_null(False)
        window = parts.select("line_idx", "pos").with_columns(
            *(shifted[i].alias(f"a{i}") for i in range(width)),
            *(has_digit[i].alias(f"d{i}") for i in range(width)),
        ).filter(ok)
        all_digits = pl.all_horizontal([pl.col(f"d{i}") for i in range(width)])
        joined = pl.concat_str([pl.col(f"a{i}") for i in range(width)])
        window = window.select(
            "line_idx",
            pl.col("pos").alias("start"),
            (pl.col("pos") + (width - 1)).alias("end"),
            joined.alias("full"),
            pl.when(all_digits)
            .then(_strip_groups(pl.concat_str([pl.col(f"a{i}") for i in range(width)], separator="-")))
            .otherwise(pl.lit("")).alias("groups"),
            # bare digits: for windows of one or two atoms ("202400123", "2024 00123")
            pl.when(all_digits & (width <= 2)).then(joined.str.replace_all(r"[^0-9]+", "").str.strip_chars_start("0"))
            .otherwise(pl.lit("")).alias("digits"),
        ).with_columns(
            pl.when(width == 1).then(pl.col("groups")).otherwise(pl.lit("")).alias("last"),
        )
        frames.append(_keys(window, ordered=width == 2))
    return pl.concat(frames)


def damerau_one(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by exactly one typo: one substituted, missing or
    extra character, or two adjacent characters swapped."""
    if a == b:
        return False
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diffs = [i for i in range(la) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return len(diffs) == 2 and diffs[1] == diffs[0] + 1 and a[diffs[0]] == b[diffs[1]] and a[diffs[1]] == b[diffs[0]]
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:]
