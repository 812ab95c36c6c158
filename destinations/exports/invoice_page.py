"""The human-readable side of a Factur-X file: an A4 invoice (more pages when the lines need them)
with seller, buyer, number, dates, the lines, the VAT breakdown and the totals.

It lays out text with ``pdfa`` fonts and draws nothing the XML does not say. Every value is checked
against the font first, so a character the font lacks is refused naming the invoice and field
rather than printed as an empty box.
"""

from __future__ import annotations

from decimal import Decimal

from destinations.exports.invoices import ExportRefused, Invoice, Party, Totals, plain_number
from destinations.exports.pdfa import A4, Font, Rule, Text

WIDTH, HEIGHT = A4
LEFT, RIGHT, TOP, BOTTOM = 50.0, WIDTH - 50.0, HEIGHT - 50.0, 70.0
SIZE, SMALL, LEADING = 9.0, 7.5, 12.0
# Lines table: (heading, x, align); amounts are right-aligned on their column's right edge.
COLUMNS = (("#", LEFT, "left"), ("Item", LEFT + 22, "left"), ("Quantity", 345.0, "right"),
           ("Unit", 352.0, "left"), ("Unit price", 440.0, "right"), ("VAT", 485.0, "right"), ("Net", RIGHT, "right"))
ITEM_WIDTH = 345.0 - 60 - (LEFT + 22)
TITLES = {"380": "Invoice", "381": "Credit note"}


def money(value: Decimal) -> str:
    return f"{value:,.2f}"


class InvoicePage:
    """Lays the invoice out top to bottom, starting a new page (and repeating the table heading)
    when the next row would run into the footer."""

    def __init__(self, invoice: Invoice, seller: Party, registration_id: str | None, total: Totals,
                 font: Font, bold: Font):
        self.invoice, self.seller, self.registration_id, self.total = invoice, seller, registration_id, total
        self.font, self.bold = font, bold
        self.drawn: list[list[Text | Rule]] = [[]]
        self.y = TOP

    # -------------------------------------------------------------- drawing primitives

    def checked(self, value: object, field: str, font: Font | None = None) -> str:
        text = "" if value is None else str(value)
        font = font or self.font
        missing = font.lacks(text)
        if missing is not None:
            raise ExportRefused(f"invoice {self.invoice.invoice_number}: {field} {text!r} contains {missing!r} "
                                f"(U+{ord(missing):04X}), which the font {font.path} has no glyph for")
        return font.use(text)

    def text(self, x: float, value: object, field: str, bold: bool = False,  # not money: page layout
             size: float = SIZE, align: str = "left") -> None:  # not money: points
        font = self.bold if bold else self.font
        text = self.checked(value, field, font)
        if not text:
            return
        if align == "right":
            x -= font.width(text, size)
        self.drawn[-1].append(Text(font, size, x, self.y, text))

    def rule(self, y: float, gray: float = 0.0) -> None:  # not money: page layout
        self.drawn[-1].append(Rule(LEFT, RIGHT, y, 0.5, gray))

    def need(self, height: float, heading=None) -> None:  # not money: page layout
        if self.y - height < BOTTOM:
            self.drawn.append([])
            self.y = TOP
            if heading:
                heading()

    def wrapped(self, value: str, field: str, width: float) -> list[str]:  # not money: page layout
        """The text in lines no wider than ``width``; a word wider than that is cut where it must be."""
        self.checked(value, field)
        lines, current = [], ""
        for word in value.split():
            candidate = f"{current} {word}".strip()
            if self.font.width(candidate, SIZE) <= width:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = word
            while self.font.width(current, SIZE) > width:
                cut = next(i for i in range(len(current), 0, -1) if self.font.width(current[:i], SIZE) <= width)
                lines.append(current[:max(cut, 1)])
                current = current[max(cut, 1):]
        return [*lines, current] if current or not lines else lines

    # -------------------------------------------------------------- the invoice, top to bottom

    def pages(self) -> list[list[Text | Rule]]:
        """Every page's drawing; after this the fonts know which characters to embed."""
        invoice = self.invoice
        self.text(LEFT, f"{TITLES[invoice.invoice_type]} {invoice.invoice_number}", "invoice_number", True, 18)
        self.y -= 34
        self.parties()
        self.details()
        self.lines()
        self.vat_breakdown()
        self.totals()
        self.payment()
        self.footers()
        return self.drawn

    def parties(self) -> None:
        top = self.y
        seller_bottom = self.party(LEFT, "Seller", self.seller, "seller", self.registration_id)
        self.y = top
        buyer_bottom = self.party(320.0, "Buyer", self.invoice.buyer, "buyer", None)
        self.y = min(seller_bottom, buyer_bottom) - 8

    def party(self, x: float, heading: str, party: Party, side: str, registration_id: str | None) -> float:
        self.text(x, heading, "label", True, SMALL)
        self.y -= LEADING
        self.text(x, party.name, f"{side}_name", True)
        place = " ".join(value for value in (party.postcode, party.city) if value)
        rows = [(party.street, f"{side}_street"), (place, f"{side}_postcode/{side}_city"),
                (party.country, f"{side}_country"),
                (party.vat_id and f"VAT id {party.vat_id}", f"{side}_vat_id"),
                (registration_id and f"Registration {registration_id}", "registration_id")]
        for value, field in rows:
            if value:
                self.y -= LEADING
                self.text(x, value, field)
        return self.y - LEADING

    def details(self) -> None:
        invoice = self.invoice
        rows = [("Number", invoice.invoice_number, "invoice_number"),
                ("Issue date", invoice.issue_date.isoformat(), "issue_date"),
                ("Due date", invoice.due_date and invoice.due_date.isoformat(), "due_date"),
                ("Delivery date", (invoice.delivery_date or invoice.issue_date).isoformat(), "delivery_date"),
                ("Buyer reference", invoice.buyer_reference, "buyer_reference"),
                ("Credits invoice", invoice.billing_reference, "billing_reference"),
                ("Currency", invoice.currency, "currency")]
        for label, value, field in rows:
            if value:
                self.text(LEFT, label, "label", True)
                self.text(LEFT + 90, value, field)
                self.y -= LEADING
        self.y -= LEADING

    def table_heading(self) -> None:
        for heading, x, align in COLUMNS:
            self.text(x, heading, "label", True, SMALL, align)
        self.rule(self.y - 3.5)
        self.y -= LEADING + 2

    def lines(self) -> None:
        self.need(3 * LEADING)
        self.table_heading()
        for line in self.invoice.lines:
            field = f"line {line.line_id} item_name"
            names = self.wrapped(line.item_name, field, ITEM_WIDTH)
            self.need(LEADING * len(names), self.table_heading)
            values = (line.line_id, None, plain_number(line.quantity), line.unit_code, plain_number(line.unit_price),
                      "–" if line.vat_rate is None else f"{plain_number(line.vat_rate)}%", money(line.line_net))
            fields = ("line_id", None, "quantity", "unit_code", "unit_price", "vat_rate", "line_net")
            for (_, x, align), value, name in zip(COLUMNS, values, fields):
                if value is not None:
                    self.text(x, value, f"line {line.line_id} {name}", align=align)
            for name in names:
                self.text(COLUMNS[1][1], name, field)
                self.y -= LEADING
        self.rule(self.y + LEADING - 3.5, 0.6)
        self.y -= LEADING

    def vat_breakdown(self) -> None:
        self.need(LEADING * (len(self.total.groups) + 2))
        for heading, x, align in (("VAT", LEFT, "left"), ("Rate", 150.0, "right"),
                                  ("Taxable amount", 260.0, "right"), ("VAT amount", 345.0, "right"),
                                  ("Exemption reason", 352.0, "left")):
            self.text(x, heading, "label", True, SMALL, align)
        self.y -= LEADING
        for group in self.total.groups:
            reasons = self.wrapped(group.exemption_reason or "", "vat_exemption_reason", RIGHT - 352.0)
            self.need(LEADING * len(reasons))
            self.text(LEFT, f"Category {group.category}", "vat_category")
            self.text(150.0, "–" if group.rate is None else f"{plain_number(group.rate)}%", "vat_rate", align="right")
            self.text(260.0, money(group.taxable), "taxable amount", align="right")
            self.text(345.0, money(group.tax), "VAT amount", align="right")
            for reason in reasons:
                self.text(352.0, reason, "vat_exemption_reason")
                self.y -= LEADING
        self.y -= LEADING

    def totals(self) -> None:
        currency = self.invoice.currency
        payable = "Amount due" if self.invoice.invoice_type == "380" else "Amount credited"
        rows = (("Total without VAT", self.total.net, False), ("VAT", self.total.tax, False),
                ("Total with VAT", self.total.gross, False), (payable, self.total.gross, True))
        self.need(LEADING * (len(rows) + 1))
        for label, value, bold in rows:
            self.text(352.0, label, "label", bold)
            self.text(RIGHT, f"{money(value)} {currency}", "total", bold, align="right")
            self.y -= LEADING
        self.y -= LEADING

    def payment(self) -> None:
        invoice = self.invoice
        if invoice.payment_iban:
            self.need(LEADING)
            due = f", due {invoice.due_date.isoformat()}" if invoice.due_date else ""
            self.text(LEFT, f"Payment by credit transfer to IBAN {invoice.payment_iban}{due}", "payment_iban")
            self.y -= LEADING

    def footers(self) -> None:
        count = len(self.drawn)
        for number, page in enumerate(self.drawn, start=1):
            note = self.checked(f"Factur-X EN 16931 — the embedded factur-x.xml is the structured invoice · "
                                f"page {number} of {count}", "label")
            page.append(Text(self.font, SMALL, LEFT, BOTTOM - 30, note))
