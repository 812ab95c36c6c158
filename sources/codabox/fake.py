"""A stateful fake of CodaBox's Delivery API (v2) on 127.0.0.1, for tests and demos.

It answers what ``sources.codabox`` asks, shaped as the module docstring there describes
(paths, JSON fields, the ``X-Software-Company`` header plus HTTP Basic credentials), and it
is strict: an unknown query parameter, a format the document does not come in, an offset
that is not in the feed are 400s with a ``detail`` saying why, as Django REST framework
(which CodaBox's API appears to be built on) answers.

State: one accounting office (fiduciary) with its clients, one feed per client, the
documents in each feed, how far each feed was acknowledged (``feed_offset``), and a log
of requests. Knobs for tests: ``faults`` (answer the next matching requests with a 429 +
Retry-After or a 5xx), ``credentials_revoked`` (every request 401s, as an expired token
does), ``broken_downloads`` (a document whose download always fails).

The seed data is synthetic: CODA 2 files whose balances add up, SODA payroll journals that
balance, small UBL purchase invoices with a PDF beside them.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sources.local_server import Fault, LocalServer, guarded

SOFTWARE_COMPANY = "6f1c1c53-5b9a-4a43-9e5e-2f0d6b0c7a11"  # the key CodaBox gives a software vendor
USERNAME = "GF-7d0c2f9e-2a51-4b8e-9a55-0c1"
PASSWORD = "s3cret-Pa55"
TOKEN = f"{USERNAME}:{PASSWORD}"  # what sources.codabox takes as its token

MAX_PAGE = 100
_NAMESPACE = uuid.UUID("0f9a3f4e-4c2d-4a7e-8d61-2b7e3c1d9a00")
ALLOWED_FORMATS = {"coda": ["cod", "pdf", "xml"], "soda": ["pdf", "xml"], "purchase_invoice": ["pdf", "xml"],
                   "sales_invoice": ["pdf", "xml"], "expense": ["pdf", "xml"]}
_MEDIA = {"cod": "text/plain; charset=latin-1", "xml": "application/xml", "pdf": "application/pdf"}


# --- synthetic documents ---------------------------------------------------------------------

def _ddmmyy(day: date) -> str:
    return day.strftime("%d%m%y")


def _coda_amount(value: Decimal) -> str:
    """15 digits, 3 implied decimals, no sign (the sign is its own field)."""
    return f"{int(abs(value) * 1000):015d}"


def coda_file(*, iban: str, holder: str, statement_no: int, day: date, old_balance: Decimal,
              movements: list[tuple[Decimal, str]], bic: str = "GKCCBEBB", enterprise: str = "0477472701",
              currency: str = "EUR") -> bytes:
    """A CODA 2 statement: header 0, old balance 1, one 2.1 per movement, new balance 8, trailer 9.

    ``movements`` are (signed amount, communication); + is money in. Every record is 128
    characters, and the new balance and the trailer's sums follow from the movements.
    """
    records = [
        "0" + "0000" + _ddmmyy(day) + "300" + "05" + " " + " " * 7 + f"{statement_no:010d}" + holder[:26].ljust(26)
        + bic.ljust(11) + ("0" + enterprise)[-11:].rjust(11) + " " + "00000" + " " * 16 + " " * 16 + " " * 7 + "2",
    ]
    account = iban.ljust(34) + currency
    records.append("1" + "2" + f"{statement_no:03d}" + account + ("1" if old_balance < 0 else "0")
                   + _coda_amount(old_balance) + _ddmmyy(day) + holder[:26].ljust(26)
                   + "Current account".ljust(35) + f"{statement_no:03d}")
    debit = credit = Decimal("0")
    for sequence, (amount, communication) in enumerate(movements, start=1):
        if amount < 0:
            debit += -amount
        else:
            credit += amount
        records.append("21" + f"{sequence:04d}" + "0000" + f"REF{statement_no:04d}{sequence:04d}".ljust(21)
                       + ("1" if amount < 0 else "0") + _coda_amount(amount) + _ddmmyy(day) + "00150000" + "0"
                       + communication[:53].ljust(53) + _ddmmyy(day) + f"{statement_no:03d}" + "0" + "0" + " " + "0")
    new_balance = old_balance + credit - debit
    records.append("8" + f"{statement_no:03d}" + account + ("1" if new_balance < 0 else "0")
                   + _coda_amount(new_balance) + _ddmmyy(day) + " " * 64 + "0")
    records.append("9" + " " * 15 + f"{len(movements) + 1:06d}" + _coda_amount(debit) + _coda_amount(credit)
                   + " " * 75 + "2")
    assert all(len(record) == 128 for record in records), [len(r) for r in records]
    return ("\r\n".join(records) + "\r\n").encode("latin-1")


def soda_file(*, source: str, seq_number: int, enterprise: str, company: str, period: str,
              lines: list[tuple[str, str, Decimal, Decimal]], generated: date | None = None) -> bytes:
    """A SODA payroll journal; ``lines`` are (account, label, debit, credit)."""
    generated = generated or date(int(period[:4]), int(period[4:]), 25)
    rows = "".join(
        f"      <TransactionLine>\n        <SocialPeriod>{period}</SocialPeriod>\n        <Accounting>\n"
        f"          <Account>{account}</Account>\n          <Label>{label}</Label>\n"
        f"          <Amount>\n            <Debit>{debit:.2f}</Debit>\n            <Credit>{credit:.2f}</Credit>\n"
        f"          </Amount>\n        </Accounting>\n      </TransactionLine>\n"
        for account, label, debit, credit in lines)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<SocialDocument xsi:noNamespaceSchemaLocation="XMLFileSocial_V1.1c.xsd" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        f"  <Source>{source}</Source>\n  <Version>0.1</Version>\n  <Social>\n"
        f"    <SeqNumber>{seq_number}</SeqNumber>\n    <GenDate>{generated.isoformat()}</GenDate>\n"
        f"    <Enterprise>\n      <EntNum>BE{enterprise}</EntNum>\n      <EntLabel>{company}</EntLabel>\n"
        f"    </Enterprise>\n    <AccountPeriod>{period}</AccountPeriod>\n    <Transactions>\n{rows}"
        "    </Transactions>\n  </Social>\n</SocialDocument>\n"
    ).encode()


def payroll_lines(gross: Decimal) -> list[tuple[str, str, Decimal, Decimal]]:
    """A month's payroll that balances: gross pay and employer's ONSS against what is owed."""
    employee_onss = (gross * Decimal("0.1307")).quantize(Decimal("0.01"))
    withholding = ((gross - employee_onss) * Decimal("0.25")).quantize(Decimal("0.01"))
    employer_onss = (gross * Decimal("0.25")).quantize(Decimal("0.01"))
    net = gross - employee_onss - withholding
    zero = Decimal("0.00")
    return [
        ("620200", "Remuneration employees", gross, zero),
        ("621000", "Employer social security", employer_onss, zero),
        ("453000", "Withholding tax", zero, withholding),
        ("454000", "ONSS payable", zero, employee_onss + employer_onss),
        ("455000", "Net pay", zero, net),
    ]


def ubl_invoice(*, number: str, issued: date, supplier: str, customer_vat: str, net: Decimal,
                vat_rate: Decimal = Decimal("21")) -> bytes:
    vat = (net * vat_rate / 100).quantize(Decimal("0.01"))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" '
        'xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" '
        'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">\n'
        f"  <cbc:ID>{number}</cbc:ID>\n  <cbc:IssueDate>{issued.isoformat()}</cbc:IssueDate>\n"
        "  <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>\n  <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>\n"
        f"  <cac:AccountingSupplierParty><cac:Party><cac:PartyName><cbc:Name>{supplier}</cbc:Name>"
        "</cac:PartyName></cac:Party></cac:AccountingSupplierParty>\n"
        f"  <cac:AccountingCustomerParty><cac:Party><cac:PartyTaxScheme><cbc:CompanyID>{customer_vat}"
        "</cbc:CompanyID></cac:PartyTaxScheme></cac:Party></cac:AccountingCustomerParty>\n"
        f'  <cac:TaxTotal><cbc:TaxAmount currencyID="EUR">{vat:.2f}</cbc:TaxAmount></cac:TaxTotal>\n'
        f'  <cac:LegalMonetaryTotal><cbc:TaxExclusiveAmount currencyID="EUR">{net:.2f}</cbc:TaxExclusiveAmount>'
        f'<cbc:PayableAmount currencyID="EUR">{net + vat:.2f}</cbc:PayableAmount></cac:LegalMonetaryTotal>\n'
        "</Invoice>\n"
    ).encode()


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF saying ``text`` (enough for a viewer; no fonts embedded)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1", "replace")
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
            b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R>>endobj\n"
            b"4 0 obj<</Length " + str(len(stream)).encode() + b">>stream\n" + stream + b"\nendstream endobj\n"
            b"trailer<</Root 1 0 R>>\n%%EOF\n")


# --- the store -------------------------------------------------------------------------------

@dataclass
class FakeDocument:
    feed_index: str
    document_model: str
    created_at: datetime
    metadata: dict
    files: dict[str, tuple[str, bytes]]  # format -> (file name, content)


@dataclass
class FakeClient:
    client_id: str
    client_code: str
    name: str
    enterprise_num: str  # "BE0477472701"
    feed_id: int
    feed: list[FakeDocument] = field(default_factory=list)
    offset: int = 0  # how many of ``feed`` were acknowledged


class CodaboxStore:
    """One accounting office as CodaBox sees it."""

    def __init__(self, *, software_company: str = SOFTWARE_COMPANY, username: str = USERNAME,
                 password: str = PASSWORD, start: datetime = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)) -> None:
        self.software_company, self.username, self.password = software_company, username, password
        self.fiduciary_id = str(uuid.uuid5(_NAMESPACE, "fiduciary"))
        self.pod_id = 66
        self.clients: list[FakeClient] = []
        self.clock = start
        self.faults: list[Fault] = []
        self.credentials_revoked = False
        self.broken_downloads: set[str] = set()
        self.requests: list[tuple[str, str]] = []  # (method, path?query)
        self.acks: list[tuple[int, str]] = []  # (feed id, feed_offset) as PUT
        self._lock = threading.Lock()
        self._counter = 0

    # state set-up
    def add_client(self, name: str, enterprise_num: str) -> FakeClient:
        with self._lock:
            key = f"client-{len(self.clients)}"
            client = FakeClient(str(uuid.uuid5(_NAMESPACE, key)), str(uuid.uuid5(_NAMESPACE, key + "-code")), name,
                                enterprise_num, feed_id=277 + len(self.clients))
            self.clients.append(client)
            return client

    def client(self, enterprise_num: str) -> FakeClient:
        return next(c for c in self.clients if c.enterprise_num == enterprise_num)

    def add_document(self, client: FakeClient, document_model: str, files: dict[str, tuple[str, bytes]],
                     metadata: dict | None = None) -> FakeDocument:
        with self._lock:
            self._counter += 1
            self.clock += timedelta(minutes=7)
            document = FakeDocument(str(uuid.uuid5(_NAMESPACE, f"document-{self._counter}")), document_model,
                                    self.clock, metadata or {}, files)
            client.feed.append(document)
            return document

    def add_coda(self, client: FakeClient, *, iban: str, statement_no: int, day: date, old_balance: Decimal,
                 movements: list[tuple[Decimal, str]]) -> FakeDocument:
        content = coda_file(iban=iban, holder=client.name, statement_no=statement_no, day=day,
                            old_balance=old_balance, movements=movements, enterprise=client.enterprise_num[2:])
        name = f"{iban}_{day:%Y%m%d}_{statement_no:03d}"
        metadata = {"movement_count": len(movements), "first_statement_number": statement_no,
                    "last_statement_number": statement_no, "new_balance_date": day.isoformat(),
                    "bank_id": "GKCCBEBB", "currency": "EUR", "iban": iban, "extension_zone": None}
        return self.add_document(client, "coda", {"cod": (f"{name}.cod", content),
                                                  "pdf": (f"{name}.pdf", tiny_pdf(f"CODA {name}"))}, metadata)

    def add_soda(self, client: FakeClient, *, seq_number: int, period: str, gross: Decimal,
                 content: bytes | None = None) -> FakeDocument:
        content = content or soda_file(source="group_s", seq_number=seq_number, enterprise=client.enterprise_num[2:],
                                       company=client.name, period=period, lines=payroll_lines(gross))
        name = f"SODA_{client.enterprise_num}_{period}_{seq_number}"
        metadata = {"social_welfare_id": "group_s", "accounting_period": period, "seq_number": seq_number}
        return self.add_document(client, "soda", {"xml": (f"{name}.xml", content),
                                                  "pdf": (f"{name}.pdf", tiny_pdf(name))}, metadata)

    def add_invoice(self, client: FakeClient, *, number: str, issued: date, supplier: str,
                    net: Decimal) -> FakeDocument:
        xml = ubl_invoice(number=number, issued=issued, supplier=supplier, customer_vat=client.enterprise_num, net=net)
        metadata = {"invoice_number": number, "invoice_date": issued.isoformat(), "supplier_name": supplier}
        return self.add_document(client, "purchase_invoice", {"xml": (f"{number}.xml", xml),
                                                              "pdf": (f"{number}.pdf", tiny_pdf(number))}, metadata)

    @classmethod
    def demo(cls) -> CodaboxStore:
        """Two clients of one accounting office; each has bank statements, a payroll month, an invoice."""
        store = cls()
        bakery = store.add_client("Bakkerij Peeters BV", "BE0477472701")
        garage = store.add_client("Garage Dubois SRL", "BE0403200393")
        store.add_coda(bakery, iban="BE68539007547034", statement_no=41, day=date(2026, 2, 27),
                       old_balance=Decimal("12500.00"),
                       movements=[(Decimal("1830.25"), "Betaling factuur 2026-112"),
                                  (Decimal("-415.60"), "+++090/9337/55493+++")])
        store.add_soda(bakery, seq_number=8908749, period="202602", gross=Decimal("15655.10"))
        store.add_invoice(bakery, number="INV-2026-0042", issued=date(2026, 2, 20), supplier="Meelfabriek NV",
                          net=Decimal("820.00"))
        store.add_coda(garage, iban="BE71096123456769", statement_no=12, day=date(2026, 2, 27),
                       old_balance=Decimal("-120.40"), movements=[(Decimal("2500.00"), "Onderhoud wagen 1-ABC-123")])
        store.add_soda(garage, seq_number=5501, period="202602", gross=Decimal("7210.00"))
        store.add_invoice(garage, number="F2026/311", issued=date(2026, 2, 24), supplier="Pneus Wallons SA",
                          net=Decimal("1312.50"))
        return store

    # what tests look at
    def pending(self, client: FakeClient | None = None) -> list[str]:
        """feed_index of every document still in a feed (not yet acknowledged)."""
        chosen = [client] if client else self.clients
        return [d.feed_index for c in chosen for d in c.feed[c.offset:]]

    def downloads(self) -> list[str]:
        return [path for method, path in self.requests if "/delivery/download/" in path]

# --- the app ---------------------------------------------------------------------------------

def _error(status: int, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _unknown_params(request: Request, allowed: tuple[str, ...]) -> JSONResponse | None:
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        return _error(400, f"unknown query parameter(s) {', '.join(unknown)}; allowed: {', '.join(allowed) or 'none'}")
    return None


def _authenticate(store: CodaboxStore, request: Request) -> JSONResponse | None:
    if request.headers.get("X-Software-Company") != store.software_company:
        return _error(403, "X-Software-Company header is missing or not a registered software company.")
    expected = "Basic " + base64.b64encode(f"{store.username}:{store.password}".encode()).decode()
    if request.headers.get("Authorization") != expected:
        return _error(401, "Invalid username/password.", {"WWW-Authenticate": 'Basic realm="api"'})
    if store.credentials_revoked:
        return _error(401, "Credentials expired or revoked.", {"WWW-Authenticate": 'Basic realm="api"'})
    return None


def create_app(current: CodaboxStore | Callable[[], CodaboxStore]) -> Starlette:
    """The API over one store, or over whichever store ``current()`` returns at each request."""
    guard = guarded(current, lambda fault, headers: _error(
        fault.status, "Request was throttled." if fault.status == 429 else "Server error.", headers), _authenticate)

    async def pod_client(request: Request, store: CodaboxStore) -> Response:
        if bad := _unknown_params(request, ()):
            return bad
        return JSONResponse({
            "id": store.pod_id, "fetch_delay": 7200, "allowed_formats": ALLOWED_FORMATS,
            "feed_clients": [{"id": c.feed_id, "client_id": c.client_id, "client_name": c.name,
                              "client_code": c.client_code, "fiduciary_id": store.fiduciary_id,
                              "target_root_state": "default", "delivery_config": None} for c in store.clients],
        })

    async def clients(request: Request, store: CodaboxStore) -> Response:
        if bad := _unknown_params(request, ()):
            return bad
        return JSONResponse([{"id": c.client_id, "fiduciary_id": store.fiduciary_id, "client_code": c.client_code,
                              "legal_entity": {"name": c.name, "enterprise_num": c.enterprise_num,
                                               "is_enterprise_num_validated": True},
                              "state": "active"} for c in store.clients])

    async def feed(request: Request, store: CodaboxStore) -> Response:
        client = next((c for c in store.clients if c.feed_id == request.path_params["feed_id"]), None)
        if client is None:
            return _error(404, "Not found.")
        if request.method == "PUT":
            return await _acknowledge(request, store, client)
        if bad := _unknown_params(request, ("after", "limit")):
            return bad
        try:
            limit = int(request.query_params.get("limit", MAX_PAGE))
        except ValueError:
            return _error(400, f"limit={request.query_params['limit']!r} is not a whole number")
        if not 1 <= limit <= MAX_PAGE:
            return _error(400, f"limit must be between 1 and {MAX_PAGE}")
        start = client.offset
        after = request.query_params.get("after")
        if after is not None:
            position = next((i for i, d in enumerate(client.feed) if d.feed_index == after), None)
            if position is None:
                return _error(400, f"after={after!r} is not a feed_index of feed {client.feed_id}")
            start = max(start, position + 1)
        page = client.feed[start:start + limit]
        return JSONResponse({
            "id": client.feed_id, "type": "download",
            "feed_entries": [{"feed_index": d.feed_index, "document_model": d.document_model,
                              "created_at": d.created_at.isoformat().replace("+00:00", "Z"),
                              "metadata": d.metadata} for d in page],
            "has_more": start + limit < len(client.feed),
        })

    async def _acknowledge(request: Request, store: CodaboxStore, client: FakeClient) -> Response:
        if bad := _unknown_params(request, ()):
            return bad
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "body is not JSON")
        if not isinstance(body, dict) or set(body) != {"feed_offset"} or not isinstance(body["feed_offset"], str):
            return _error(400, 'body must be {"feed_offset": "<feed_index>"}')
        position = next((i for i, d in enumerate(client.feed) if d.feed_index == body["feed_offset"]), None)
        if position is None:
            return _error(400, f"feed_offset {body['feed_offset']!r} is not in feed {client.feed_id}")
        with store._lock:
            store.acks.append((client.feed_id, body["feed_offset"]))
            client.offset = max(client.offset, position + 1)
        return JSONResponse({"feed_id": client.feed_id, "feed_offset": body["feed_offset"]})

    async def download(request: Request, store: CodaboxStore) -> Response:
        if bad := _unknown_params(request, ()):
            return bad
        index, file_format = request.path_params["feed_index"], request.path_params["format"]
        document = next((d for c in store.clients for d in c.feed if d.feed_index == index), None)
        if document is None:
            return _error(404, "Not found.")
        if file_format not in document.files:
            return _error(400, f"format {file_format!r} is not available for a {document.document_model} document; "
                               f"available: {', '.join(sorted(document.files))}")
        if index in store.broken_downloads:
            return _error(500, "Server error.")
        name, content = document.files[file_format]
        return Response(content, media_type=_MEDIA[file_format],
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return Starlette(routes=[
        Route("/v2/delivery/pod-client/", guard(pod_client)),
        Route("/v2/clients/", guard(clients)),
        Route("/v2/delivery/feed/{feed_id:int}/", guard(feed), methods=["GET", "PUT"]),
        Route("/v2/delivery/download/{feed_index}/{format}/", guard(download)),
    ])


class CodaboxServer(LocalServer):
    """Serves a store on 127.0.0.1 from a background thread; use as a context manager.

    ``store`` may be replaced while the server runs (tests share one server and start each
    from a fresh store)."""

    name = "fake CodaBox"
    root = "/v2"  # the API root, as https://api.codabox.com/v2 is for the real one

    def __init__(self, store: CodaboxStore, port: int = 0) -> None:
        self.store = store
        super().__init__(create_app(lambda: self.store), port)
