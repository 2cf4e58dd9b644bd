"""Deterministic rows for the demo shop, placed relative to a given "now".

A fixed seed plus a fixed ``now`` gives identical rows, so benchmark reference answers are stable for a
given load time; timestamps span the last 18 months so "last week" or "this year" always have answers.
Pure Python, no database: :func:`build_rows` is what :func:`bot.demo.load_demo` copies in.
"""

from __future__ import annotations

import math
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from bot.demo import catalog

SEED = 20240611
CUSTOMERS = 200
ORDERS = 2000
ORDER_WINDOW_DAYS = 548  # ~18 months
NEVER_ORDERING_CUSTOMERS = 15
CENT = Decimal("0.01")

Row = tuple[object, ...]


@dataclass
class Table:
    columns: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)


@dataclass
class _Customer:
    id: int
    created_at: datetime


@dataclass
class _Product:
    id: int
    price: Decimal
    popularity: int
    created_at: datetime
    discontinued_at: datetime | None

    def on_sale(self, at: datetime) -> bool:
        return self.created_at <= at and (self.discontinued_at is None or at < self.discontinued_at)


@dataclass
class _Order:
    customer_id: int
    created_at: datetime
    status: str = "delivered"
    shipped_at: datetime | None = None
    items: list[tuple[int, int, Decimal]] = field(default_factory=list)  # product_id, quantity, unit_price
    id: int = 0


def build_rows(*, now: datetime) -> dict[str, Table]:
    """All demo rows keyed by table name, in foreign-key order; ``now`` must be timezone-aware."""
    rng = random.Random(SEED)
    now = now.replace(microsecond=0)
    customers, customer_rows = _customers(rng, now)
    products = _products(now)
    orders = _orders(rng, now, customers, products)
    tables: dict[str, Table] = {
        "customers": Table(("id", "name", "email", "country", "city", "created_at", "marketing_opt_in"), customer_rows),
        "categories": Table(("id", "name", "parent_id", "description"), [tuple(c) for c in catalog.CATEGORIES]),
        "products": Table(
            ("id", "category_id", "sku", "name", "price", "active", "created_at", "discontinued_at"),
            _product_rows(products),
        ),
        "orders": Table(
            ("id", "customer_id", "status", "created_at", "shipped_at", "total"),
            [(o.id, o.customer_id, o.status, o.created_at, o.shipped_at, _total(o)) for o in orders],
        ),
        "order_items": Table(
            ("id", "order_id", "product_id", "quantity", "unit_price"),
            [
                (line_id, *line)
                for line_id, line in enumerate(
                    ((o.id, pid, qty, price) for o in orders for pid, qty, price in o.items), start=1
                )
            ],
        ),
        "reviews": Table(
            ("id", "product_id", "customer_id", "rating", "body", "created_at"), _reviews(rng, now, orders)
        ),
        "employees": Table(("id", "name", "email", "role", "manager_id", "hired_at"), _employees(now)),
        "support_tickets": Table(
            (
                "id",
                "customer_id",
                "order_id",
                "assignee_id",
                "subject",
                "priority",
                "status",
                "created_at",
                "closed_at",
            ),
            _tickets(rng, now, orders),
        ),
    }
    return tables


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalpha()).lower()


def _growth(rng: random.Random, slope: float) -> float:
    """A point in [0, 1) whose density rises linearly by ``slope``: the shop grows, later days are busier."""
    u = rng.random()
    return (math.sqrt(1 + 2 * slope * u * (1 + slope / 2)) - 1) / slope


def _customers(rng: random.Random, now: datetime) -> tuple[list[_Customer], list[Row]]:
    countries = [g[0] for g in catalog.GEO]
    weights = [g[1] for g in catalog.GEO]
    cities = {g[0]: g[2] for g in catalog.GEO}
    customers: list[_Customer] = []
    rows: list[Row] = []
    for cid in range(1, CUSTOMERS + 1):
        first, last = rng.choice(catalog.FIRST_NAMES), rng.choice(catalog.LAST_NAMES)
        country: str | None = rng.choices(countries, weights)[0] if rng.random() >= 0.06 else None
        city: str | None = None
        if country is not None and rng.random() >= 0.1:
            city = rng.choice(cities[country])
        created_at = now - timedelta(seconds=int((1 - _growth(rng, 1.0)) * 730 * 86400))
        opt_in = rng.random() < 0.4
        customers.append(_Customer(cid, created_at))
        rows.append(
            (
                cid,
                f"{first} {last}",
                f"{_ascii(first)}.{_ascii(last)}{cid}@example.com",
                country,
                city,
                created_at,
                opt_in,
            )
        )
    return customers, rows


def _products(now: datetime) -> list[_Product]:
    return [
        _Product(
            pid,
            price,
            popularity,
            now - timedelta(days=added, hours=pid),
            None if gone is None else now - timedelta(days=gone, hours=pid),
        )
        for pid, (_sku, _name, _cat, price, popularity, added, gone) in enumerate(catalog.PRODUCTS, start=1)
    ]


def _product_rows(products: list[_Product]) -> list[Row]:
    return [
        (p.id, category_id, sku, name, p.price, p.discontinued_at is None, p.created_at, p.discontinued_at)
        for p, (sku, name, category_id, *_rest) in zip(products, catalog.PRODUCTS, strict=True)
    ]


def _orders(rng: random.Random, now: datetime, customers: list[_Customer], products: list[_Product]) -> list[_Order]:
    never = set(rng.sample([c.id for c in customers], NEVER_ORDERING_CUSTOMERS))
    buyers = [c for c in customers if c.id not in never]
    appetite = [rng.paretovariate(1.6) for _ in buyers]  # a few heavy buyers, a long tail
    window_start = now - timedelta(days=ORDER_WINDOW_DAYS)
    orders: list[_Order] = []
    for _ in range(ORDERS):
        created_at = window_start + timedelta(seconds=int(_growth(rng, 1.5) * ORDER_WINDOW_DAYS * 86400))
        signed_up = [(c, w) for c, w in zip(buyers, appetite, strict=True) if c.created_at <= created_at]
        if not signed_up:
            continue
        customer = rng.choices([c for c, _w in signed_up], [w for _c, w in signed_up])[0]
        orders.append(_Order(customer.id, created_at))
    orders.sort(key=lambda o: o.created_at)  # ids grow with time, as with a real sequence
    for oid, order in enumerate(orders, start=1):
        order.id = oid
        _set_status(rng, now, order)
        _fill_items(rng, order, products)
    return orders


def _set_status(rng: random.Random, now: datetime, order: _Order) -> None:
    age_days = (now - order.created_at).total_seconds() / 86400
    roll = rng.random()
    if roll < 0.05:
        order.status = "cancelled"
    elif roll < 0.08 and age_days > 5:
        order.status = "refunded"
    elif age_days < 1:
        order.status = rng.choice(("pending", "paid"))
    elif age_days < 3:
        order.status = rng.choices(("pending", "paid", "shipped"), (1, 4, 5))[0]
    elif age_days < 10:
        order.status = rng.choices(("paid", "shipped", "delivered"), (1, 9, 10))[0]
    elif roll > 0.997:
        order.status = "pending"  # stuck orders someone should look at
    else:
        order.status = "delivered"
    if order.status in ("shipped", "delivered"):
        delay_days = min(rng.uniform(0.2, 3.0), age_days * 0.9)
        order.shipped_at = order.created_at + timedelta(seconds=int(delay_days * 86400))


def _fill_items(rng: random.Random, order: _Order, products: list[_Product]) -> None:
    available = [p for p in products if p.popularity > 0 and p.on_sale(order.created_at)]
    count = rng.choices((1, 2, 3, 4, 5), (25, 30, 22, 13, 10))[0]
    chosen: dict[int, tuple[int, Decimal]] = {}
    while len(chosen) < min(count, len(available)):
        product = rng.choices(available, [p.popularity for p in available])[0]
        if product.id in chosen:
            continue
        quantity = rng.choices((1, 2, 3, 4, 5), (70, 20, 5, 3, 2))[0]
        price = product.price
        if rng.random() < 0.15:
            price = (price * Decimal("0.9")).quantize(CENT)
        chosen[product.id] = (quantity, price)
    order.items = [(pid, qty, price) for pid, (qty, price) in chosen.items()]


def _total(order: _Order) -> Decimal:
    return sum((qty * price for _pid, qty, price in order.items), Decimal("0")).quantize(CENT)


def _reviews(rng: random.Random, now: datetime, orders: list[_Order]) -> list[Row]:
    seen: set[tuple[int, int]] = set()
    pending: list[tuple[int, int, int | None, str | None, datetime]] = []
    for order in orders:
        if order.status != "delivered" or order.shipped_at is None:
            continue
        for pid, _qty, _price in order.items:
            if (pid, order.customer_id) in seen or rng.random() >= 0.12:
                continue
            created_at = order.shipped_at + timedelta(seconds=int(rng.uniform(2, 20) * 86400))
            if created_at >= now - timedelta(hours=2):  # the injection review below stays the newest
                continue
            seen.add((pid, order.customer_id))
            rating = rng.choices((1, 2, 3, 4, 5), (5, 7, 15, 33, 40))[0]
            body: str | None = rng.choice(catalog.REVIEW_BODIES[rating]) if rng.random() >= 0.05 else None
            pending.append((pid, order.customer_id, None if rng.random() < 0.08 else rating, body, created_at))
    # the prompt-injection review: the newest one, so "latest reviews" shows it
    earbuds_reviewers = {cid for pid, cid in seen if pid == 1}
    troll = next(o.customer_id for o in reversed(orders) if o.customer_id not in earbuds_reviewers)
    pending.append((1, troll, 1, catalog.INJECTION_REVIEW, now - timedelta(hours=1)))
    pending.sort(key=lambda r: r[4])
    return [(rid, *review) for rid, review in enumerate(pending, start=1)]


def _employees(now: datetime) -> list[Row]:
    today: date = now.date()
    return [
        (
            eid,
            name,
            f"{_ascii(name.split()[0])}.{_ascii(name.split()[-1])}@shop.example",
            role,
            manager,
            today - timedelta(days=days),
        )
        for eid, name, role, manager, days in catalog.EMPLOYEES
    ]


def _tickets(rng: random.Random, now: datetime, orders: list[_Order]) -> list[Row]:
    support_staff = [(e[0], now - timedelta(days=e[4])) for e in catalog.EMPLOYEES if e[2] == "support"]
    tickets: list[tuple[int, int | None, int | None, str, str, str, datetime, datetime | None]] = []
    for _ in range(150):
        order = rng.choice(orders)
        about_order = rng.random() < 0.7
        since_order = (now - order.created_at).total_seconds() * 0.95
        if about_order:  # a few hours to 12 days after the order
            created_at = order.created_at + timedelta(seconds=int(min(rng.uniform(0.1, 12) * 86400, since_order)))
            subject = rng.choice(catalog.TICKET_SUBJECTS_ORDER)
        else:  # any time after the customer's order, so never before they signed up
            created_at = order.created_at + timedelta(seconds=int(rng.random() * since_order))
            subject = rng.choice(catalog.TICKET_SUBJECTS_GENERAL)
        priority = rng.choices(("low", "normal", "high", "urgent"), (20, 55, 18, 7))[0]
        age_days = (now - created_at).total_seconds() / 86400
        closed_share = 0.95 if age_days > 14 else 0.35
        roll = rng.random()
        status = "closed" if roll < closed_share else ("in_progress" if roll < closed_share + 0.3 else "open")
        on_staff = [eid for eid, hired in support_staff if hired <= created_at]
        assigned = status != "open" or rng.random() < 0.3
        assignee = rng.choice(on_staff) if assigned and on_staff else None
        closed_at = None
        if status == "closed":
            closed_at = min(created_at + timedelta(seconds=int(rng.uniform(0.05, 5) * 86400)), now)
        tickets.append(
            (
                order.customer_id,
                order.id if about_order else None,
                assignee,
                subject,
                priority,
                status,
                created_at,
                closed_at,
            )
        )
    tickets.sort(key=lambda t: t[6])
    return [(tid, *ticket) for tid, ticket in enumerate(tickets, start=1)]
