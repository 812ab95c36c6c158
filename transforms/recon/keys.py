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


def _keys(base: pl.DataFrame) -> pl.DataFrame:
    """The three keys of a frame with full/groups/digits columns, long format (other
    columns, such as a window's span, are kept)."""
    digit_count = pl.col("digits").str.len_chars()
    has_letter = pl.col("full").str.contains(r"[A-Z]")
    keep = [c for c in base.columns if c not in ("full", "groups", "digits", "last")]
    full = base.filter(has_letter & pl.col("full").str.contains(r"[0-9]")).select(
        *keep,
        ("F:" + pl.col("full")).alias("key"),
        pl.lit(2, pl.Int8).alias("strength"),
    )
    groups = base.filter(pl.col("groups").str.contains("-") & (digit_count >= MIN_DIGITS + 1)).select(
        *keep,
        ("G:" + pl.col("groups")).alias("key"),
        pl.when(digit_count >= STRONG_DIGITS - 2).then(2).otherwise(1).cast(pl.Int8).alias("strength"),
    )
    digits = base.filter(digit_count >= MIN_DIGITS).select(
        *keep,
        ("D:" + pl.col("digits")).alias("key"),
        pl.when(digit_count >= STRONG_DIGITS).then(2).otherwise(1).cast(pl.Int8).alias("strength"),
    )
    ordered = base.filter(pl.col("groups").str.contains("-") & (digit_count >= MIN_DIGITS + 1)).select(
        *keep,
        ("O:" + pl.col("groups").str.split("-").list.sort().list.join("-")).alias("key"),
        pl.when(digit_count >= STRONG_DIGITS - 2).then(2).otherwise(1).cast(pl.Int8).alias("strength"),
    )
    last = base.filter(pl.col("last").str.len_chars() >= MIN_LAST).select(
        *keep, ("L:" + pl.col("last")).alias("key"), pl.lit(1, pl.Int8).alias("strength"))
    return pl.concat([full, groups, digits, ordered, last]).unique(subset=[*keep, "key"], keep="first",
                                                                   maintain_order=True)


def atoms(text: pl.DataFrame, column: str = "text") -> pl.DataFrame:
    """One row per alphanumeric run of each line's free text: (line_idx, pos, atom)."""
    return (
        text.select("line_idx", pl.col(column).str.extract_all(r"[0-9A-Za-z]+").alias("atom"))
        .explode("atom")
        .drop_nulls("atom")
        .with_columns(pl.int_range(pl.len()).over("line_idx").alias("pos"))
    )


def text_keys(text: pl.DataFrame, column: str = "text") -> pl.DataFrame:
    """(line_idx, start, end, key, strength) for every run of 1..3 atoms of each line's text.

    Windows must end on an atom with a digit (document numbers do); the digit
    keys also need every atom of the window to carry digits, since a prefix word
    adds nothing to them. ``start``/``end`` are the window's first and last atom:
    keys from overlapping windows are one mention of one document."""
    parts = atoms(text, column).with_columns(pl.col("atom").str.to_uppercase())
    line = pl.col("line_idx")
    parts = parts.with_columns(pl.col("pos").cast(pl.Int32))
    shifted = [parts["atom"]]
    same = [pl.Series([True] * parts.height)]
    for step in range(1, MAX_WINDOW):
        shifted.append(parts["atom"].shift(-step))
        same.append(parts["line_idx"].shift(-step) == parts["line_idx"])
    frames = []
    for width in range(1, MAX_WINDOW + 1):
        window = parts.select(line, "pos").with_columns(
            *(shifted[i].alias(f"a{i}") for i in range(width)),
            *(same[i].alias(f"s{i}") for i in range(width)),
        )
        ok = pl.all_horizontal([pl.col(f"s{i}").fill_null(False) for i in range(width)])
        last_digit = pl.col(f"a{width - 1}").str.contains(r"[0-9]")
        window = window.filter(ok & last_digit)
        all_digits = pl.all_horizontal([pl.col(f"a{i}").str.contains(r"[0-9]") for i in range(width)])
        window = window.select(
            "line_idx",
            pl.col("pos").alias("start"),
            (pl.col("pos") + (width - 1)).alias("end"),
            pl.concat_str([pl.col(f"a{i}") for i in range(width)]).alias("full"),
            pl.when(all_digits)
            .then(_strip_groups(pl.concat_str([pl.col(f"a{i}") for i in range(width)], separator="-")))
            .alias("groups"),
            all_digits.alias("all_digits"),
        ).with_columns(
            pl.when(pl.col("all_digits"))
            .then(pl.col("full").str.replace_all(r"[^0-9]+", "").str.strip_chars_start("0"))
            .alias("digits")
        ).drop("all_digits")
        frames.append(window)
    base = pl.concat(frames).with_columns(pl.col("groups").fill_null(""), pl.col("digits").fill_null(""))
    single = (pl.col("start") == pl.col("end")) & ~pl.col("groups").str.contains("-")
    base = base.with_columns(pl.when(single).then(pl.col("groups")).otherwise(pl.lit("")).alias("last"))
    return _keys(base)


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
