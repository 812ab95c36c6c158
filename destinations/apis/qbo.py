"""QuickBooks Online Accounting API: journal entries as JournalEntry objects.

Each line is a ``JournalEntryLineDetail`` with ``PostingType`` Debit or Credit and the QBO account
id our GL account maps to (``accounts`` in the tenant's destination: QBO refers to accounts by
id, not number). ``DocNumber`` (21 characters at most) is a short hash of the entry id, by
which the entry is found again; ``PrivateNote`` carries the entry id in full. Every POST
carries ``requestid``, derived from the entry id and content hash: QBO answers a repeated
request id with the original response.
"""

from __future__ import annotations

from destinations.apis.base import JournalToPost, Outcome, idempotency_key, short_reference
from destinations.apis.http import ApiClient

SYSTEM = "qbo"
BASE_URL = "https://quickbooks.api.intuit.com"
TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
AUTHORIZE_URL = "https://appcenter.intuit.com/connect/oauth2"
SCOPE = "com.intuit.quickbooks.accounting"
MINOR_VERSION = "75"


class QboApi:
    system = SYSTEM

    def __init__(self, client: ApiClient, accounts: dict[str, str]) -> None:
        self.client, self.accounts = client, accounts

    def close(self) -> None:
        self.client.close()

    def _path(self, resource: str) -> str:
        return f"v3/company/{self.client.organisation}/{resource}"

    def _document(self, journal: JournalToPost) -> dict:
        lines = []
        for number, line in enumerate(journal.lines, start=1):
            posting, amount = ("Debit", line.debit) if line.debit > 0 else ("Credit", line.credit)
            lines.append({"Id": str(number), "Description": (line.description or journal.description)[:4000],
                          "Amount": amount, "DetailType": "JournalEntryLineDetail",
                          "JournalEntryLineDetail": {"PostingType": posting,
                                                     "AccountRef": {"value": self.accounts[line.account]}}})
        return {"DocNumber": short_reference(journal.entry_id), "TxnDate": journal.entry_date.isoformat(),
                "PrivateNote": f"ledgerflow {journal.entry_id}: {journal.description}"[:4000], "Line": lines}

    def find_journal(self, journal: JournalToPost) -> str | None:
        query = f"select * from JournalEntry where DocNumber = '{short_reference(journal.entry_id)}'"
        response = self.client.request("GET", self._path("query"), params={"query": query,
                                                                            "minorversion": MINOR_VERSION})
        if response.status_code != 200:
            return None
        found = response.json().get("QueryResponse", {}).get("JournalEntry") or []
        return found[0]["Id"] if found else None

    def post_journals(self, journals: list[JournalToPost]) -> list[Outcome]:
        return [self._post(journal) for journal in journals]

    def _post(self, journal: JournalToPost) -> Outcome:
        unmapped = sorted({line.account for line in journal.lines if line.account not in self.accounts})
        if unmapped:
            return Outcome(journal.entry_id, "failed", message=f"account {', '.join(unmapped)} has no QBO account "
                                                               "id in the destination's accounts table")
        key = idempotency_key(SYSTEM, journal.entry_id, journal.content_hash, 50)
        response = self.client.request("POST", self._path("journalentry"), json_body=self._document(journal),
                                       params={"requestid": key, "minorversion": MINOR_VERSION})
        if response.status_code == 200:
            return Outcome(journal.entry_id, "posted", external_id=response.json()["JournalEntry"]["Id"])
        return Outcome(journal.entry_id, "failed", message=_message(response))


def _message(response) -> str:
    try:
        fault = response.json().get("Fault") or {}
    except ValueError:
        return f"QBO: HTTP {response.status_code}"
    errors = fault.get("Error") or []
    text = "; ".join(f"{e.get('Message', '')}: {e.get('Detail', '')}".strip(": ") for e in errors)
    return "QBO: " + (text or f"HTTP {response.status_code}")


def api(client: ApiClient, settings) -> QboApi:
    """The registry's constructor: a tenant's ``[destinations.NAME]`` of type qbo."""
    return QboApi(client, settings.accounts)
