"""One way to damage a valid statement file for the parsers' property tests: cut it, flip a byte,
delete or duplicate a line, or insert a format-specific fragment. Every parser must answer any of
these with statements or its documented ``StatementError``, nothing else."""

from __future__ import annotations

from hypothesis import strategies as st


def mutate(data: st.DataObject, valid: bytes, fragments: list[bytes], newline: bytes = b"\n") -> bytes:
    lines = valid.split(newline)
    kind = data.draw(st.sampled_from(["truncate", "flip", "delete", "duplicate", "insert"]))
    if kind == "truncate":
        return valid[:data.draw(st.integers(0, len(valid)))]
    if kind == "flip":
        at = data.draw(st.integers(0, len(valid) - 1))
        return valid[:at] + bytes([data.draw(st.integers(0, 255))]) + valid[at + 1:]
    if kind == "insert":
        at = data.draw(st.integers(0, len(valid)))
        return valid[:at] + data.draw(st.sampled_from(fragments)) + valid[at:]
    at = data.draw(st.integers(0, len(lines) - 1))
    if kind == "delete":
        del lines[at]
    else:
        lines.insert(at, lines[at])
    return newline.join(lines)
