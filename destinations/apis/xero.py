"""Xero Accounting API: journal entries as manual journals.

A manual journal carries our entry as GL lines (``LineAmount`` positive for a debit, negative for
a credit; VAT is already on its own lines, so ``LineAmountTypes`` is ``NoTax``). Its narration
ends with the entry id in brackets, which is how it is found again. Journals go out 50 to a
``PUT /ManualJournals`` with ``summarizeErrors=false``, so one invalid journal comes back with
its own validation errors while the others are created; the request's ``Idempotency-Key`` is
derived from the keys of the journals in it.
"""

from __future__ import annotations

import hashlib

from destinations.apis.base import JournalToPost, Outcome, idempotency_key
from destinations.apis.http import ApiClient

SYSTEM = "xero"
BASE_URL = "https://api.xero.com/api.xro/2.0"
TOKEN_URL = "https://identity.xero.com/connect/token"
AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
SCOPE = "offline_access accounting.transactions accounting.contacts accounting.settings.read"
BATCH = 50
NARRATION_MAX = 4000


class XeroApi:
    system = SYSTEM

    def __init__(self, client: ApiClient, account_codes: dict[str, str] | None = None) -> None:
        self.client = client
        self.account_codes = account_codes or {}
        self.client.headers["xero-tenant-id"] = client.organisation

    def close(self) -> None:
        self.client.close()

    def narration(self, journal: JournalToPost) -> str:
        suffix = f" [{journal.entry_id}]"
        return (journal.description or journal.document_ref)[:NARRATION_MAX - len(suffix)] + suffix

    def _document(self, journal: JournalToPost) -> dict:
        return {"Narration": self.narration(journal), "Date": journal.entry_date.isoformat(), "Status": "POSTED",
                "LineAmountTypes": "NoTax",
                "JournalLines": [{"LineAmount": line.debit - line.credit,
                                  "AccountCode": self.account_codes.get(line.account, line.account),
                                  "Description": line.description or journal.description} for line in journal.lines]}

    def find_journal(self, journal: JournalToPost) -> str | None:
        narration = self.narration(journal).replace('"', '\\"')
        response = self.client.request("GET", "ManualJournals", params={"where": f'Narration=="{narration}"'})
        if response.status_code != 200:
            return None
        found = response.json().get("ManualJournals") or []
        return found[0]["ManualJournalID"] if found else None

    def post_journals(self, journals: list[JournalToPost]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for start in range(0, len(journals), BATCH):
            outcomes += self._post_batch(journals[start:start + BATCH])
        return outcomes

    def _post_batch(self, journals: list[JournalToPost]) -> list[Outcome]:
        keys = "".join(idempotency_key(SYSTEM, j.entry_id, j.content_hash, 64) for j in journals)
        key = "lf-" + hashlib.sha256(keys.encode()).hexdigest()
        response = self.client.request("PUT", "ManualJournals", params={"summarizeErrors": "false"},
                                       json_body={"ManualJournals": [self._document(j) for j in journals]},
                                       headers={"Idempotency-Key": key})
        if response.status_code == 200:
            created = response.json().get("ManualJournals") or []
            if len(created) == len(journals):
                return [_outcome(journal, element) for journal, element in zip(journals, created, strict=True)]
        if len(journals) > 1:  # the request as a whole was refused: one by one, to name the culprit
            return [outcome for journal in journals for outcome in self._post_batch([journal])]
        return [Outcome(journals[0].entry_id, "failed", message=_message(response))]


def _outcome(journal: JournalToPost, element: dict) -> Outcome:
    errors = element.get("ValidationErrors") or []
    if errors or element.get("StatusAttributeString") == "ERROR":
        text = "; ".join(e.get("Message", "") for e in errors) or "refused"
        return Outcome(journal.entry_id, "failed", message=f"Xero: {text}")
    return Outcome(journal.entry_id, "posted", external_id=element.get("ManualJournalID"))


def _message(response) -> str:
    """Xero's own words for a refused request: the validation messages, else the status."""
    try:
        body = response.json()
    except ValueError:
        return f"Xero: HTTP {response.status_code}"
    messages = [error.get("Message", "") for element in body.get("Elements") or []
                for error in element.get("ValidationErrors") or []]
    return "Xero: " + ("; ".join(m for m in messages if m) or body.get("Message") or body.get("Detail")
                       or f"HTTP {response.status_code}")


def api(client: ApiClient, settings) -> XeroApi:
    """The registry's constructor: a tenant's ``[destinations.NAME]`` of type xero."""
    return XeroApi(client, settings.accounts)
