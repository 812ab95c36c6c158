"""Structured payment references: the creditor references that carry their own check digits.

A structured reference is the most certain link between a bank line and an open item:
the payer copies it from the invoice, and its check digits tell a copying error from
a real reference. The same reference is printed differently on each side
(``+++090/9337/55493+++`` on a Belgian invoice, ``090933755493`` in the bank file;
``RF18 5390 0754 7034`` on paper, ``rf18539007547034`` typed by the payer), so every
comparison goes through :func:`normalise_structured_ref`, which reduces a printed
reference to one canonical key.

Schemes (each validator takes an already-normalised string and never raises):

* Belgian OGM / structured communication (:func:`ogm_valid`): 12 digits, the last two
  are the first ten mod 97 (97 when that is 0);
* ISO 11649 RF creditor reference (:func:`rf_valid`): ``RF``, two check digits, 1..21
  letters or digits; valid when the rearranged number is 1 mod 97;
* Luhn mod 10 (:func:`luhn_valid`): Norwegian KID mod 10, Swedish OCR (2..25 digits);
  Danish FIK +71/+75 payment ids (:func:`fik_valid`, 15 or 16 digits) use it too;
* Norwegian KID mod 11 (:func:`kid11_valid`): weights 2..7 from the right, check
  ``11 - sum mod 11`` (0 for 11, ``-`` for 10);
* Finnish national reference (:func:`finnish_valid`): 4..20 digits, weights 7, 3, 1
  from the right;
* Swiss QR reference / ESR (:func:`swiss_qr_valid`): 27 digits, mod 10 recursive.

Pure functions, no IO. Hot paths (normalise + validate run once per bank line and
open item) avoid regexes and allocations where a string method does the job.
"""

from __future__ import annotations

import re

__all__ = [
    "fik_valid",
    "find_structured_refs",
    "finnish_valid",
    "kid11_valid",
    "luhn_valid",
    "make_finnish",
    "make_kid11",
    "make_luhn",
    "make_ogm",
    "make_rf",
    "make_swiss_qr",
    "normalise_structured_ref",
    "ogm_valid",
    "rf_valid",
    "structured_ref_valid",
    "swiss_qr_valid",
]

RF_BODY_MAX = 21  # ISO 11649: at most 21 characters after "RF" and the check digits
NUMERIC_MAX = 25  # KID and Swedish OCR stop at 25 digits; longer digit runs are not references
QR_LENGTH = 27

_SEPARATORS = re.compile(r"[^0-9A-Z]+")
_RF_SHAPE = re.compile(r"RF[0-9]{2}[0-9A-Z]{1,21}")
# A == 10 ... Z == 35, as ISO 7064 mod 97-10 (IBAN, RF) wants the letters.
_LETTER_VALUES = str.maketrans({chr(c): str(c - 55) for c in range(ord("A"), ord("Z") + 1)})
_RF_SUFFIX = "RF".translate(_LETTER_VALUES)  # "2715": "RF" moved to the end
_DIGIT_VALUES = bytes.maketrans(b"0123456789", bytes(range(10)))  # b"7" -> 7: sum() over bytes runs in C
_LUHN_DOUBLE = bytes.maketrans(b"0123456789", bytes((0, 2, 4, 6, 8, 1, 3, 5, 7, 9)))  # not money: 2*d, digits summed
_QR_TABLE = (0, 9, 4, 6, 8, 2, 7, 1, 3, 5)
# Next carry of the mod 10 recursive check, by (carry, digit character): one lookup per digit.
_QR_NEXT = tuple({str(d): _QR_TABLE[(carry + d) % 10] for d in range(10)} for carry in range(10))

# Free text: decorated OGM (the decoration must close the way it opened) ...
_OGM_IN_TEXT = re.compile(r"(\+\+\+|\*\*\*)\s*([0-9]{3})\s*/?\s*([0-9]{4})\s*/?\s*([0-9]{5})\s*\1")
# ... and alphanumeric runs, to read RF references compact or in groups.
_ATOM = re.compile(r"[0-9A-Za-z]+")
_GROUP_GAPS = frozenset({" ", "\u00a0"})  # one space (or a no-break space) between printed groups


# --------------------------------------------------------------------------- canonical key

def normalise_structured_ref(text: str | None) -> str | None:
    """The canonical key of a printed reference: ASCII letters and digits, upper case.

    Decorations (``+++``, ``***``) and separators (spaces, dots, slashes, dashes, any
    other punctuation) go; leading zeros stay, since they are part of the number
    (``000…97`` is a valid OGM). None when nothing is left, so an empty reference
    never joins with another empty one. Idempotent. A KID mod 11 whose check digit
    is ``-`` loses it here (dashes are separators): such KIDs are rare and compare
    equal on both sides anyway."""
    if not text:
        return None
    key = text.upper()
    if key.isascii() and key.isalnum():  # already canonical: the common case, no regex
        return key
    key = _SEPARATORS.sub("", key)
    return key or None


# --------------------------------------------------------------------------- validators

def _digits(text: str, low: int, high: int) -> bool:
    return low <= len(text) <= high and text.isascii() and text.isdigit()


def ogm_valid(text: str) -> bool:
    """Belgian structured communication: 12 digits, last two = first ten mod 97 (97 for 0)."""
    if not _digits(text, 12, 12):
        return False
    return (int(text[:10]) % 97 or 97) == int(text[10:])


def rf_valid(text: str) -> bool:
    """ISO 11649: ``RF`` + check digits 02..98 + 1..21 alphanumerics, and
    int(body + "RF" + check, letters as 10..35) mod 97 == 1."""
    if not _RF_SHAPE.fullmatch(text) or not "02" <= text[2:4] <= "98":
        return False
    return int(text[4:].translate(_LETTER_VALUES) + _RF_SUFFIX + text[2:4]) % 97 == 1


def _luhn_sum(digits: str) -> int:
    """Luhn sum of ``digits`` whose last digit is the check digit (or the position of one)."""
    r = digits.encode()[::-1]
    return sum(r[0::2].translate(_DIGIT_VALUES)) + sum(r[1::2].translate(_LUHN_DOUBLE))  # not money


def luhn_valid(text: str) -> bool:
    """Luhn mod 10 over 2..25 digits (Norwegian KID mod 10, Swedish OCR, Danish FIK)."""
    return _digits(text, 2, NUMERIC_MAX) and _luhn_sum(text) % 10 == 0


def fik_valid(text: str) -> bool:
    """Danish FIK payment id (+71: 15 digits, +75: 16 digits), Luhn mod 10."""
    return len(text) in (15, 16) and luhn_valid(text)


def _values(digits: str) -> bytes:
    """The digits as byte values 0..9, rightmost first: slices of it sum in C."""
    return digits.encode().translate(_DIGIT_VALUES)[::-1]


def _kid11_check(payload: str) -> str:
    r = _values(payload)  # weights 2, 3, 4, 5, 6, 7, 2, 3, ... from the right
    total = (2 * sum(r[0::6]) + 3 * sum(r[1::6]) + 4 * sum(r[2::6])
             + 5 * sum(r[3::6]) + 6 * sum(r[4::6]) + 7 * sum(r[5::6]))
    check = 11 - total % 11
    return "0" if check == 11 else "-" if check == 10 else str(check)


def kid11_valid(text: str) -> bool:
    """Norwegian KID mod 11: 2..25 characters, digits and a check digit (``-`` for 10)."""
    if not 2 <= len(text) <= NUMERIC_MAX or not _digits(text[:-1], 1, NUMERIC_MAX):
        return False
    return _kid11_check(text[:-1]) == text[-1]


def _finnish_check(payload: str) -> str:
    r = _values(payload)  # weights 7, 3, 1, 7, ... from the right
    return str(-(7 * sum(r[0::3]) + 3 * sum(r[1::3]) + sum(r[2::3])) % 10)


def finnish_valid(text: str) -> bool:
    """Finnish national reference: 4..20 digits, weights 7, 3, 1 from the right."""
    return _digits(text, 4, 20) and _finnish_check(text[:-1]) == text[-1]


def _qr_check(payload: str) -> str:
    carry = 0
    for c in payload:
        carry = _QR_NEXT[carry][c]
    return str(-carry % 10)


def swiss_qr_valid(text: str) -> bool:
    """Swiss QR reference (and the ESR/ISR reference it replaced): 27 digits, mod 10 recursive."""
    return _digits(text, QR_LENGTH, QR_LENGTH) and _qr_check(text[:-1]) == text[-1]


def structured_ref_valid(key: str) -> bool:
    """True when a canonical key passes a check-digit scheme that fits its shape.

    Shapes and the schemes tried:

    * ``RF`` + 2 digits + 1..21 alphanumerics: ISO 11649 only;
    * 12 digits: Belgian OGM only. Letting the digit schemes below also accept 12
      digits would make about 3 in 10 random numbers "valid" and the OGM check
      (1 in 97) worthless; a 12-digit KID, OCR or Finnish reference is reported
      invalid (the engine still matches an equal one, with lower confidence);
    * 27 digits: Swiss QR reference only;
    * 2..25 digits otherwise: Luhn mod 10 (KID mod 10, Swedish OCR, Danish FIK),
      KID mod 11, or Finnish (4..20 digits). About one random number in four passes
      one of them, so validity of such a key is weak evidence on its own;
    * anything else (other letters, other lengths, empty): False."""
    if not key:
        return False
    if key[:2] == "RF":
        return rf_valid(key)
    if not (key.isascii() and key.isdigit()):
        return False
    length = len(key)
    if length == 12:
        return ogm_valid(key)
    if length == QR_LENGTH:
        return swiss_qr_valid(key)
    if length > NUMERIC_MAX:
        return False
    return luhn_valid(key) or kid11_valid(key) or finnish_valid(key)


# --------------------------------------------------------------------------- creators

def _payload(digits: str, low: int, high: int, what: str) -> str:
    if not _digits(digits, low, high):
        raise ValueError(f"{what} needs {low}..{high} digits, got {digits!r}")
    return digits


def make_ogm(base10: int) -> str:
    """The 12-digit OGM of a number 0..9999999999 (leading zeros kept)."""
    if not 0 <= base10 < 10**10:
        raise ValueError(f"an OGM carries 0..9999999999, got {base10}")
    return f"{base10:010d}{base10 % 97 or 97:02d}"


def make_rf(body: str) -> str:
    """The ISO 11649 reference for ``body`` (1..21 letters/digits; case and separators ignored)."""
    key = _SEPARATORS.sub("", body.upper())
    if not 1 <= len(key) <= RF_BODY_MAX:
        raise ValueError(f"an RF body has 1..21 letters or digits, got {body!r}")
    check = 98 - int(key.translate(_LETTER_VALUES) + _RF_SUFFIX + "00") % 97
    return f"RF{check:02d}{key}"


def make_luhn(digits: str) -> str:
    """``digits`` + its Luhn check digit."""
    payload = _payload(digits, 1, NUMERIC_MAX - 1, "a Luhn reference")
    return payload + str(-_luhn_sum(payload + "0") % 10)


def make_kid11(digits: str) -> str:
    """``digits`` + its KID mod 11 check digit, which is ``-`` for one payload in eleven."""
    return digits + _kid11_check(_payload(digits, 1, NUMERIC_MAX - 1, "a KID"))


def make_finnish(digits: str) -> str:
    """``digits`` (3..19) + the Finnish reference check digit."""
    return digits + _finnish_check(_payload(digits, 3, 19, "a Finnish reference"))


def make_swiss_qr(digits: str) -> str:
    """A Swiss QR reference: ``digits`` (at most 26) zero-padded to 26, + check digit."""
    payload = _payload(digits, 1, QR_LENGTH - 1, "a QR reference").zfill(QR_LENGTH - 1)
    return payload + _qr_check(payload)


# --------------------------------------------------------------------------- free text

def find_structured_refs(text: str | None) -> list[str]:
    """Canonical keys of the valid structured references in free text, in order, once each.

    Only references that announce themselves are read:

    * OGM decorated with ``+++…+++`` or ``***…***`` (``ddd/dddd/ddddd``, slashes and
      spaces optional);
    * RF references starting a word (any case), compact (``RF18539007547034``) or
      printed in groups separated by single spaces (``RF18 5390 0754 7034``).

    Plain digit runs are left to the document-number matcher: in free text they are
    as likely dates, account or customer numbers, and a digit-only check passes one
    number in ten. References whose check digits fail are dropped."""
    if not text:
        return []
    found: list[tuple[int, str]] = []
    for match in _OGM_IN_TEXT.finditer(text):
        key = match.group(2) + match.group(3) + match.group(4)
        if ogm_valid(key):
            found.append((match.start(), key))
    if "RF" in text.upper():
        found.extend(_rf_in_text(text))
    found.sort(key=lambda pair: pair[0])
    seen: set[str] = set()
    keys = []
    for _, key in found:
        if key not in seen:
            seen.add(key)
            keys.append(key)
    return keys


def _rf_in_text(text: str) -> list[tuple[int, str]]:
    """(position, key) of valid RF references: see :func:`_rf_candidates` for which
    groupings are tried, and in which order."""
    atoms = [(m.start(), m.end(), m.group()) for m in _ATOM.finditer(text)]
    found = []
    i = 0
    while i < len(atoms):
        start, _, head = atoms[i]
        if head[:2].upper() == "RF" and len(head) >= 4 and head[2:4].isdigit():
            following: list[str] = []
            j = i + 1
            length = len(head) - 4
            while j < len(atoms) and text[atoms[j - 1][1]:atoms[j][0]] in _GROUP_GAPS:
                group = atoms[j][2]
                length += len(group)
                if length > RF_BODY_MAX or not _same_reference(head, following, group):
                    break
                following.append(group)
                j += 1
            for used in _rf_candidates(head, following):
                key = (head + "".join(following[:used])).upper()
                if rf_valid(key):
                    found.append((start, key))
                    i += used
                    break
        i += 1
    return found


def _same_reference(head: str, previous: list[str], group: str) -> bool:
    """Whether the next group can continue a reference printed in groups.

    Not when its case differs from the ``RF``'s (``RF18 5390 0754 7034 dank u``), nor
    when it is all letters after a body of digits (``… 7034 DANK U``): otherwise a
    following short word is tried as the last group, and passes by a 1-in-97 chance."""
    if head[:2] == "RF" and not group.isupper() and not group.isdigit():
        return False
    if head[:2] == "rf" and not group.islower() and not group.isdigit():
        return False
    body = head[4:] + "".join(previous)
    return not (group.isalpha() and body.isdigit())


def _rf_candidates(head: str, following: list[str]) -> list[int]:
    """How many following groups to join to ``head``, in the order to try them.

    A compact reference (``RF18539007547034 Invoice``) is tried alone first, so the
    next word is not swallowed by a 1-in-97 chance. A reference printed in groups
    (``RF18 5390 0754 7034``) tries the groupings that look printed first — every
    group four characters but the last, one to four — longest first; then any other
    run of groups, longest first (``RF71 INV2 026042``). The groups offered are those
    :func:`_same_reference` lets through."""
    counts = list(range(len(following), -1, -1))
    if len(head) > 4:
        return [0] + counts[:-1]
    printed = []
    for used in range(1, len(following) + 1):
        if len(following[used - 1]) > 4:
            break
        printed.append(used)
        if len(following[used - 1]) < 4:
            break
    printed.reverse()
    return printed + [used for used in counts if used not in printed and used > 0]
