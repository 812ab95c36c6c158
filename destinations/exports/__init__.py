"""Export file formats, one module each, registered in ``FORMATS``."""

from destinations.exports import journal_csv

FORMATS = {"csv": journal_csv}
