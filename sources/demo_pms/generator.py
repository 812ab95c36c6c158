"""A synthetic hotel: what its PMS would have recorded, deterministic from a seed.

Each *origin day* (the arrival date of a batch of reservations, plus the day's
walk-in restaurant and spa guests) draws from its own random stream seeded by
(seed, day), so any window of history is the same whichever range is generated.
A reservation produces records on several business days: a deposit weeks before,
room charges at the night audit (after midnight, before the 04:00 cut-off, so they
belong to the previous hotel day), breakfasts, dinners, bar tabs after midnight,
spa, and the settlement at checkout. Some reservations are cancelled (deposit
refunded or kept as a cancellation fee), some folios get an allowance and a card
refund, a few postings are voided, and now and then a past day is corrected
(a charge reclassified, or a POS ticket uploaded late): those records get a second
version whose ``updated_at`` is days after the business day it belongs to.

Records are plain dicts shaped like the PMS API's JSON: money and rates are
decimal strings, timestamps ISO 8601 in UTC.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

UTC = ZoneInfo("UTC")

VAT_RATE = {
    "ROOM": "10.00",
    "BREAKFAST": "10.00",
    "FOOD": "10.00",
    "BEVERAGE": "20.00",
    "SPA": "20.00",
    "CANCEL_FEE": "10.00",
    "CITY_TAX": "0.00",
}
CITY_TAX_PER_PERSON_NIGHT = Decimal("2.30")
BREAKFAST_PRICE = Decimal("19.50")
COMPANIES = [
    ("C001", "Alpine Consulting SAS"),
    ("C002", "Lacroix Ingénierie"),
    ("C003", "Savoie Événements SARL"),
    ("C004", "Nordic Travel AB"),
    ("C005", "Bergmann & Söhne GmbH"),
    ("C006", "Mont-Blanc Pharma SA"),
    ("C007", "Rhône Logistics"),
    ("C008", "Université de Genève"),
]
ROOM_RATES = [Decimal(v) for v in ("98.00", "112.50", "129.00", "145.00", "169.00", "189.00", "239.00")]


@dataclass(frozen=True)
class HotelSpec:
    seed: int
    timezone: str
    history_start: date
    history_end: date
    rooms: int = 60
    currency: str = "EUR"


@dataclass
class _Day:
    """Records drawn for one origin day; ids are numbered within it."""

    origin: date
    tz: ZoneInfo
    currency: str
    charges: list[dict] = field(default_factory=list)
    payments: list[dict] = field(default_factory=list)

    def at(self, day: date, hour: int, minute: int, second: int = 0) -> datetime:
        """A local wall-clock time -> UTC (fold=0 picks the first of an ambiguous hour)."""
        return datetime.combine(day, time(hour, minute, second), tzinfo=self.tz).astimezone(UTC)

    def charge(self, when: datetime, category: str, amount: Decimal, *, folio: str, outlet: str,
               description: str, quantity: int = 1, reservation: str | None = None) -> dict:
        record = {
            "id": f"CHG-{self.origin:%Y%m%d}-{len(self.charges) + 1:05d}",
            "folio_id": folio,
            "reservation_id": reservation,
            "outlet": outlet,
            "category": category,
            "description": description,
            "quantity": quantity,
            "amount": f"{amount:.2f}",
            "vat_rate": VAT_RATE[category],
            "currency": self.currency,
            "status": "posted",
            "posted_at": _iso(when),
            "updated_at": _iso(when),
        }
        self.charges.append(record)
        return record

    def payment(self, when: datetime, method: str, amount: Decimal, *, folio: str, kind: str = "payment",
                reservation: str | None = None, company: tuple[str, str] | None = None) -> dict:
        number = len(self.payments) + 1
        record = {
            "id": f"PAY-{self.origin:%Y%m%d}-{number:05d}",
            "folio_id": folio,
            "reservation_id": reservation,
            "kind": kind,
            "method": method,
            "amount": f"{amount:.2f}",
            "currency": self.currency,
            "company_id": company[0] if company else None,
            "company_name": company[1] if company else None,
            "reference": f"{method[:3]}{self.origin:%y%m%d}{number:05d}",
            "status": "posted",
            "posted_at": _iso(when),
            "updated_at": _iso(when),
        }
        self.payments.append(record)
        return record


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    """A price between low and high euros with realistic cents (x.00, x.50, x.90 ...)."""
    return Decimal(rng.randint(low, high)) + Decimal(rng.choice(["0.00", "0.50", "0.90", "0.40", "0.70"]))


def _reservations(day: _Day, rng: random.Random, rooms: int) -> None:
    weekend = day.origin.weekday() >= 4
    arrivals = max(1, round(rooms * (0.42 if weekend else 0.30) * rng.uniform(0.8, 1.2)))
    for number in range(1, arrivals + 1):
        _stay(day, rng, f"R{day.origin:%Y%m%d}{number:03d}")


def _stay(day: _Day, rng: random.Random, reservation: str) -> None:
    arrival = day.origin
    nights = rng.choices([1, 2, 3, 4, 5], weights=[30, 32, 18, 12, 8])[0]
    adults = rng.choices([1, 2], weights=[35, 65])[0]
    rate = rng.choice(ROOM_RATES)
    company = rng.choice(COMPANIES) if rng.random() < 0.18 else None
    folio = f"F{reservation[1:]}"
    deposit = Decimal(0)
    deposit_method = None
    if rng.random() < 0.35:
        deposit = rate
        deposit_method = "CARD" if rng.random() < 0.7 else "BANK_TRANSFER"
        booked = arrival - timedelta(days=rng.randint(3, 30))
        day.payment(day.at(booked, rng.randint(9, 20), rng.randint(0, 59)), deposit_method, deposit,
                    folio=folio, kind="deposit", reservation=reservation)

    if rng.random() < 0.06:  # cancelled before arrival
        cancelled = day.at(arrival - timedelta(days=rng.randint(0, 2)), rng.randint(9, 18), rng.randint(0, 59))
        if deposit and rng.random() < 0.5:
            day.payment(cancelled, deposit_method, -deposit, folio=folio, kind="deposit", reservation=reservation)
        elif deposit:  # non-refundable: the deposit pays the cancellation fee
            day.charge(cancelled, "CANCEL_FEE", deposit, folio=folio, outlet="rooms",
                       description="Cancellation fee", reservation=reservation)
            day.payment(cancelled + timedelta(minutes=1), "DEPOSIT", deposit, folio=folio, reservation=reservation)
        return

    balance = Decimal(0)
    check_in = day.at(arrival, rng.randint(15, 21), rng.randint(0, 59))
    if deposit:
        day.payment(check_in, "DEPOSIT", deposit, folio=folio, reservation=reservation)
        balance -= deposit
    charges: list[dict] = []
    for night in range(nights):
        hotel_day = arrival + timedelta(days=night)
        morning = hotel_day + timedelta(days=1)
        audit = day.at(morning, 2, rng.randint(10, 40), rng.randint(0, 59))  # night audit, before the cut-off
        charges.append(day.charge(audit, "ROOM", rate, folio=folio, outlet="rooms",
                                  description="Room night", reservation=reservation))
        tax = CITY_TAX_PER_PERSON_NIGHT * adults
        charges.append(day.charge(audit + timedelta(seconds=1), "CITY_TAX", tax, folio=folio, outlet="rooms",
                                  description="Taxe de séjour", quantity=adults, reservation=reservation))
        if rng.random() < 0.6:
            charges.append(day.charge(day.at(morning, rng.randint(7, 10), rng.randint(0, 59)), "BREAKFAST",
                                      BREAKFAST_PRICE * adults, folio=folio, outlet="restaurant",
                                      description="Breakfast", quantity=adults, reservation=reservation))
        if rng.random() < 0.3:
            dinner = day.at(hotel_day, rng.randint(19, 22), rng.randint(0, 59))
            charges.append(day.charge(dinner, "FOOD", _money(rng, 28, 85) * adults, folio=folio,
                                      outlet="restaurant", description="Dinner", reservation=reservation))
            charges.append(day.charge(dinner + timedelta(minutes=50), "BEVERAGE", _money(rng, 6, 40), folio=folio,
                                      outlet="restaurant", description="Wine and drinks", reservation=reservation))
        if rng.random() < 0.12:  # the bar after midnight still belongs to this hotel day
            charges.append(day.charge(day.at(morning, 0, rng.randint(5, 59)), "BEVERAGE", _money(rng, 9, 30),
                                      folio=folio, outlet="bar", description="Bar", reservation=reservation))
        if rng.random() < 0.12:
            charges.append(day.charge(day.at(hotel_day, rng.randint(14, 18), rng.randint(0, 59)), "SPA",
                                      _money(rng, 65, 140), folio=folio, outlet="spa",
                                      description="Spa treatment", reservation=reservation))
    if charges and rng.random() < 0.02:  # posted to the wrong folio, voided a few minutes later
        wrong = charges[rng.randrange(len(charges))]
        _new_version(wrong, minutes=7, status="void")
    balance += sum(Decimal(current(c)["amount"]) for c in charges if current(c)["status"] == "posted")

    departure = arrival + timedelta(days=nights)
    check_out = day.at(departure, rng.randint(8, 11), rng.randint(0, 59))
    if not balance:
        return
    if company:
        day.payment(check_out, "CITY_LEDGER", balance, folio=folio, reservation=reservation, company=company)
        return
    method = rng.choices(["CARD", "CASH", "BANK_TRANSFER"], weights=[75, 12, 13])[0]
    day.payment(check_out, method, balance, folio=folio, reservation=reservation)
    if method == "CARD" and rng.random() < 0.03:  # complaint: an allowance refunded to the card
        allowance = -(BREAKFAST_PRICE * adults)
        later = check_out + timedelta(minutes=rng.randint(5, 40))
        day.charge(later, "BREAKFAST", allowance, folio=folio, outlet="restaurant",
                   description="Allowance: breakfast not served", quantity=-adults, reservation=reservation)
        day.payment(later + timedelta(minutes=1), "CARD", allowance, folio=folio, reservation=reservation)


def _walk_ins(day: _Day, rng: random.Random, rooms: int) -> None:
    scale = max(1, rooms // 20)
    for ticket in range(1, rng.randint(6, 14) * scale + 1):
        service = rng.choice([(12, 14), (19, 22)])
        when = day.at(day.origin, rng.randint(*service), rng.randint(0, 59))
        folio = f"POS-{day.origin:%Y%m%d}-{ticket:04d}"
        food = day.charge(when, "FOOD", _money(rng, 18, 95), folio=folio, outlet="restaurant",
                          description="Restaurant ticket")
        drinks = day.charge(when + timedelta(seconds=30), "BEVERAGE", _money(rng, 4, 45), folio=folio,
                            outlet="restaurant", description="Restaurant ticket")
        total = Decimal(food["amount"]) + Decimal(drinks["amount"])
        method = "CARD" if rng.random() < 0.72 else "CASH"
        day.payment(when + timedelta(minutes=rng.randint(40, 90)), method, total, folio=folio)
    for guest in range(1, rng.randint(0, 4) * scale + 1):
        when = day.at(day.origin, rng.randint(10, 18), rng.randint(0, 59))
        folio = f"SPA-{day.origin:%Y%m%d}-{guest:04d}"
        price = _money(rng, 55, 160)
        day.charge(when, "SPA", price, folio=folio, outlet="spa", description="Day spa")
        day.payment(when + timedelta(minutes=75), "CARD", price, folio=folio)


def _new_version(record: dict, *, minutes: int = 0, days: int = 0, when: datetime | None = None, **changes) -> None:
    """Give a record a later version: the PMS keeps one current state per id."""
    versions = record.setdefault("_versions", [])
    base = versions[-1] if versions else record
    updated = when or datetime.fromisoformat(base["updated_at"]) + timedelta(days=days, minutes=minutes)
    versions.append({**{k: v for k, v in base.items() if k != "_versions"}, **changes, "updated_at": _iso(updated)})


def _corrections(day: _Day, rng: random.Random) -> None:
    """Every few days, something about this day is corrected after it was closed."""
    if rng.random() >= 0.3:
        return
    next_morning = day.origin + timedelta(days=rng.randint(1, 3))
    when = day.at(next_morning, rng.randint(9, 11), rng.randint(0, 59))
    if rng.random() < 0.5:
        # A restaurant ticket's drinks were keyed as food: same total, other VAT rate.
        candidates = [c for c in day.charges if c["category"] == "FOOD" and c["folio_id"].startswith("POS-")]
        if candidates:
            record = rng.choice(candidates)
            _new_version(record, when=when, category="BEVERAGE", vat_rate=VAT_RATE["BEVERAGE"],
                         description="Restaurant ticket (reclassified)")
            return
    # A POS terminal was offline: the ticket reaches the PMS days later, dated the day it was sold.
    sold = day.at(day.origin, 21, rng.randint(0, 59))
    folio = f"POS-{day.origin:%Y%m%d}-LATE"
    amount = _money(rng, 20, 60)
    for record in (
        day.charge(sold, "FOOD", amount, folio=folio, outlet="restaurant", description="Late POS upload"),
        day.payment(sold + timedelta(minutes=3), "CARD", amount, folio=folio),
    ):
        record["updated_at"] = _iso(when)


def generate_day(spec: HotelSpec, origin: date) -> tuple[list[dict], list[dict]]:
    """All records (with their later versions) that originate on ``origin``."""
    rng = random.Random(f"ledgerflow-demo:{spec.seed}:{origin.isoformat()}")
    day = _Day(origin, ZoneInfo(spec.timezone), spec.currency)
    _reservations(day, rng, spec.rooms)
    _walk_ins(day, rng, spec.rooms)
    _corrections(day, rng)
    return day.charges, day.payments


def versions(record: dict) -> list[dict]:
    """Every version of a record, oldest first, without the bookkeeping key."""
    first = {k: v for k, v in record.items() if k != "_versions"}
    return [first, *record.get("_versions", [])]


def current(record: dict) -> dict:
    return versions(record)[-1]


def generate(spec: HotelSpec) -> tuple[list[dict], list[dict]]:
    """Every record whose posting falls in the history, each with its versions.

    Reservations arriving up to 6 days before the history still check out inside it,
    and deposits are taken up to 30 days before arrival, so origin days reach past
    both ends; records are then kept only if their posting time lies inside.
    """
    first = datetime.combine(spec.history_start, time(4), tzinfo=ZoneInfo(spec.timezone)).astimezone(UTC)
    last = datetime.combine(spec.history_end + timedelta(days=1), time(4),
                            tzinfo=ZoneInfo(spec.timezone)).astimezone(UTC)
    charges: list[dict] = []
    payments: list[dict] = []
    origin = spec.history_start - timedelta(days=6)
    while origin <= spec.history_end + timedelta(days=31):
        day_charges, day_payments = generate_day(spec, origin)
        for record in (*day_charges, *day_payments):
            posted = datetime.fromisoformat(record["posted_at"])
            if first <= posted < last:
                (charges if record["id"].startswith("CHG") else payments).append(record)
        origin += timedelta(days=1)
    return charges, payments
