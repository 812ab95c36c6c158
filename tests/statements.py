"""Small statement files written by the tests themselves (no third-party samples copied)."""

from __future__ import annotations

from decimal import Decimal

OURS = "NL91ABNA0417164300"


def mt940(number: int, opening: str, lines: list[tuple[str, str, str]], *, reference: str = "MT940",
          account: str = OURS) -> str:
    """An MT940 statement: lines are (YYMMDD, signed amount, :86: text); the closing balance adds up."""
    def swift(amount: str) -> str:
        return amount.lstrip("-").replace(".", ",")

    balance = Decimal(opening)
    first = lines[0][0] if lines else "260301"
    out = [f":20:{reference}", f":25:{account}", f":28C:{number:05d}/001",
           f":60F:{'D' if balance < 0 else 'C'}{first}EUR{swift(opening)}"]
    for day, amount, text in lines:
        mark = "D" if amount.startswith("-") else "C"
        out += [f":61:{day}{day[2:]}{mark}{swift(amount)}NTRFNONREF", f":86:{text}"]
        balance += Decimal(amount)
    last = lines[-1][0] if lines else first
    out += [f":62F:{'D' if balance < 0 else 'C'}{last}EUR{swift(f'{abs(balance):.2f}')}", "-"]
    return "\r\n".join(out) + "\r\n"
