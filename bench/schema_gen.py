"""A generated 500-table schema that looks like a real company's, and questions whose needed tables are known.

About a hundred hand-written "core" tables across twelve schemas (sales, hr, finance, …) carry the data
people ask about. The rest is what real databases accumulate around them: history and audit copies,
yearly archives, staging and backup tables, lookup tables and a legacy schema with cryptic names. They
share words and columns with the core tables, which is what makes choosing the right tables hard.

The questions were written against the core tables before the ranking was tuned; each lists the tables
its SQL needs (joins included). ``python -m bench.schema_gen`` prints the SQL.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# schema -> "table: comment | column type[ -> schema.table], ..." ; "id" columns become primary keys
CORE: dict[str, list[str]] = {
    "sales": [
        "customers: People and companies who buy from us | id bigint, name text, email text, phone text, "
        "country_code char(2) -> geo.countries, segment text, created_at timestamptz, is_active boolean",
        "customer_addresses: Billing and shipping addresses of customers | id bigint, customer_id bigint -> "
        "sales.customers, kind text, street text, postal_code text, city_id int -> geo.cities",
        "orders: One row per customer order placed in a store or online | id bigint, customer_id bigint -> "
        "sales.customers, store_id int -> geo.stores, sales_rep_id int -> sales.sales_reps, promo_code_id int -> "
        "marketing.promo_codes, status text, total_amount numeric(12,2), currency char(3), ordered_at timestamptz",
        "order_items: Lines of an order: product, quantity and price | id bigint, order_id bigint -> sales.orders, "
        "product_id bigint -> catalog.products, quantity int, unit_price numeric(12,2), discount numeric(5,2)",
        "payments: Money received for orders | id bigint, order_id bigint -> sales.orders, method text, "
        "amount numeric(12,2), paid_at timestamptz, provider_ref text",
        "refunds: Money given back to customers for returned items | id bigint, order_item_id bigint -> "
        "sales.order_items, amount numeric(12,2), reason text, refunded_at timestamptz",
        "sales_reps: Account managers and their quarterly quota | id int, employee_id int -> hr.employees, "
        "territory text, quota numeric(12,2)",
        "quotes: Price offers sent to prospects before an order | id bigint, customer_id bigint -> "
        "sales.customers, sales_rep_id int -> sales.sales_reps, amount numeric(12,2), status text, "
        "valid_until date, created_at timestamptz",
        "contracts: Signed framework agreements with wholesale customers | id bigint, customer_id bigint -> "
        "sales.customers, starts_on date, ends_on date, annual_value numeric(14,2)",
    ],
    "catalog": [
        "products: Everything we sell | id bigint, sku text, name text, category_id int -> "
        "catalog.product_categories, brand_id int -> catalog.brands, supplier_id int -> catalog.suppliers, "
        "list_price numeric(12,2), launched_on date, discontinued boolean",
        "product_categories: Category tree of the product catalog | id int, parent_id int, name text, slug text",
        "brands: Brands of products | id int, name text, country_code char(2)",
        "product_prices: Price list per product and period | id bigint, product_id bigint -> catalog.products, "
        "price numeric(12,2), currency char(3), valid_from date, valid_to date",
        "product_reviews: Star ratings and reviews customers leave on products | id bigint, product_id bigint -> "
        "catalog.products, customer_id bigint -> sales.customers, rating smallint, body text, created_at "
        "timestamptz",
        "suppliers: Companies we buy goods from | id int, name text, country_code char(2), contact_email text, "
        "payment_terms_days int",
        "product_images: Pictures of products | id bigint, product_id bigint -> catalog.products, url text, "
        "position int",
    ],
    "inventory": [
        "warehouses: Our warehouses and their location | id int, code text, name text, city_id int -> geo.cities,"
        " capacity_pallets int",
        "stock_levels: Units on hand per product and warehouse, with the reorder point | id bigint, product_id "
        "bigint -> catalog.products, warehouse_id int -> inventory.warehouses, on_hand int, reserved int, "
        "reorder_point int, updated_at timestamptz",
        "stock_movements: Every goods receipt, pick, transfer and adjustment | id bigint, product_id bigint -> "
        "catalog.products, warehouse_id int -> inventory.warehouses, movement_type text, quantity int, "
        "moved_at timestamptz",
        "purchase_orders: Orders we place with suppliers | id bigint, supplier_id int -> catalog.suppliers, "
        "warehouse_id int -> inventory.warehouses, status text, ordered_at timestamptz, expected_at date",
        "purchase_order_lines: Products and quantities of a purchase order | id bigint, purchase_order_id bigint "
        "-> inventory.purchase_orders, product_id bigint -> catalog.products, quantity int, unit_cost "
        "numeric(12,2)",
        "stock_counts: Physical inventory counts | id bigint, warehouse_id int -> inventory.warehouses, "
        "product_id bigint -> catalog.products, counted int, counted_at timestamptz",
    ],
    "logistics": [
        "shipments: Parcels sent to customers for an order | id bigint, order_id bigint -> sales.orders, "
        "carrier_id int -> logistics.carriers, driver_id int -> logistics.drivers, status text, shipped_at "
        "timestamptz, promised_at timestamptz, delivered_at timestamptz",
        "shipment_items: Order items packed in a shipment | id bigint, shipment_id bigint -> logistics.shipments,"
        " order_item_id bigint -> sales.order_items, quantity int",
        "carriers: Parcel and freight companies | id int, name text, service_level text",
        "delivery_routes: Daily routes of our own drivers | id bigint, driver_id int -> logistics.drivers, "
        "vehicle_id int -> logistics.vehicles, route_date date, stops int",
        "drivers: Drivers of our delivery fleet | id int, employee_id int -> hr.employees, license_class text",
        "vehicles: Delivery vans and trucks | id int, plate text, model text, next_service_due date, "
        "odometer_km int",
        "tracking_events: Carrier scan events of shipments | id bigint, shipment_id bigint -> "
        "logistics.shipments, event_code text, location text, occurred_at timestamptz",
    ],
    "hr": [
        "employees: Everyone on the payroll | id int, first_name text, last_name text, email text, "
        "department_id int -> hr.departments, position_id int -> hr.positions, manager_id int, office_city_id "
        "int -> geo.cities, hired_on date, left_on date",
        "departments: Organisational units | id int, name text, cost_center_id int -> finance.cost_centers",
        "positions: Job titles and grades | id int, title text, grade text",
        "salaries: Salary history of employees | id bigint, employee_id int -> hr.employees, amount "
        "numeric(12,2), currency char(3), valid_from date, valid_to date",
        "leave_requests: Vacation, sick leave and parental leave | id bigint, employee_id int -> hr.employees, "
        "leave_type text, starts_on date, ends_on date, status text, approved_by int",
        "timesheets: Hours worked per employee and day | id bigint, employee_id int -> hr.employees, work_date "
        "date, hours numeric(4,2), project text",
        "performance_reviews: Yearly performance reviews | id bigint, employee_id int -> hr.employees, "
        "reviewer_id int, review_year int, score smallint, summary text",
        "job_applicants: Candidates in the hiring pipeline | id bigint, position_id int -> hr.positions, name "
        "text, stage text, applied_at timestamptz, source text",
        "trainings: Courses offered to staff | id int, title text, mandatory boolean, hours int",
        "training_enrollments: Which employee takes which training, and completion | id bigint, training_id "
        "int -> hr.trainings, employee_id int -> hr.employees, enrolled_at date, completed_at date",
    ],
    "finance": [
        "gl_accounts: Chart of accounts of the general ledger | id int, code text, name text, account_type text",
        "journal_entries: Accounting journal entries | id bigint, entry_date date, description text, posted "
        "boolean, created_by int",
        "journal_lines: Debit and credit lines of a journal entry | id bigint, journal_entry_id bigint -> "
        "finance.journal_entries, gl_account_id int -> finance.gl_accounts, debit numeric(14,2), credit "
        "numeric(14,2)",
        "invoices: Invoices we send to customers | id bigint, customer_id bigint -> sales.customers, order_id "
        "bigint -> sales.orders, invoice_number text, issued_on date, due_on date, amount numeric(12,2), "
        "tax_amount numeric(12,2), currency char(3), paid_on date",
        "invoice_lines: Lines of an invoice | id bigint, invoice_id bigint -> finance.invoices, description "
        "text, amount numeric(12,2), tax_rate_id int -> finance.tax_rates",
        "budgets: Planned spend per cost center and month | id bigint, cost_center_id int -> "
        "finance.cost_centers, month date, amount numeric(14,2)",
        "expenses: Expense reports of employees | id bigint, employee_id int -> hr.employees, cost_center_id "
        "int -> finance.cost_centers, amount numeric(12,2), category text, submitted_at timestamptz, "
        "approved_by int, approved_at timestamptz",
        "exchange_rates: Daily currency exchange rates | id bigint, rate_date date, from_currency char(3), "
        "to_currency char(3), rate numeric(18,8)",
        "tax_rates: VAT and sales tax rates per country | id int, country_code char(2) -> geo.countries, name "
        "text, rate numeric(5,2)",
        "cost_centers: Cost centers for budgeting | id int, code text, name text, owner_id int",
    ],
    "marketing": [
        "campaigns: Marketing campaigns | id int, name text, channel text, starts_on date, ends_on date, "
        "budget numeric(12,2)",
        "ad_spend: Daily advertising spend per campaign and network | id bigint, campaign_id int -> "
        "marketing.campaigns, network text, spend_date date, amount numeric(12,2), clicks int, impressions int",
        "email_sends: Marketing emails sent | id bigint, campaign_id int -> marketing.campaigns, customer_id "
        "bigint -> sales.customers, sent_at timestamptz",
        "email_events: Opens, clicks and bounces of marketing emails | id bigint, email_send_id bigint -> "
        "marketing.email_sends, event_type text, occurred_at timestamptz",
        "leads: Prospects captured by forms and events | id bigint, campaign_id int -> marketing.campaigns, "
        "email text, score int, created_at timestamptz, converted_customer_id bigint -> sales.customers",
        "promo_codes: Discount codes | id int, code text, percent_off numeric(5,2), valid_until date, "
        "campaign_id int -> marketing.campaigns",
        "newsletter_subscribers: Newsletter sign-ups | id bigint, email text, subscribed_at timestamptz, "
        "unsubscribed_at timestamptz",
    ],
    "support": [
        "tickets: Customer support requests | id bigint, customer_id bigint -> sales.customers, agent_id int -> "
        "support.agents, sla_policy_id int -> support.sla_policies, priority text, status text, subject text, "
        "opened_at timestamptz, first_response_at timestamptz, resolved_at timestamptz",
        "ticket_comments: Messages on a ticket from customers and agents | id bigint, ticket_id bigint -> "
        "support.tickets, author_type text, body text, created_at timestamptz",
        "agents: Support agents | id int, employee_id int -> hr.employees, team text",
        "sla_policies: Response and resolution time targets per priority | id int, priority text, "
        "response_minutes int, resolution_hours int",
        "satisfaction_surveys: CSAT answers after a ticket is solved | id bigint, ticket_id bigint -> "
        "support.tickets, score smallint, comment text, answered_at timestamptz",
        "knowledge_articles: Help center articles | id int, title text, body text, views int, updated_at "
        "timestamptz",
    ],
    "web": [
        "sessions: Website and app visits | id bigint, user_id bigint -> auth.users, device_type text, browser "
        "text, started_at timestamptz, ended_at timestamptz",
        "page_views: Pages seen in a session | id bigint, session_id bigint -> web.sessions, path text, "
        "viewed_at timestamptz, duration_ms int",
        "events: Tracked product analytics events | id bigint, session_id bigint -> web.sessions, name text, "
        "properties jsonb, occurred_at timestamptz",
        "signups: Account registrations, trial or paid | id bigint, user_id bigint -> auth.users, plan_id int -> "
        "saas.plans, is_trial boolean, signed_up_at timestamptz, utm_source text",
        "ab_tests: Experiments on the website | id int, name text, page text, started_at timestamptz, "
        "ended_at timestamptz",
        "ab_test_assignments: Which user saw which variant, and whether they converted | id bigint, ab_test_id "
        "int -> web.ab_tests, user_id bigint -> auth.users, variant text, converted boolean",
    ],
    "auth": [
        "users: Login accounts of the web app | id bigint, email text, customer_id bigint -> sales.customers, "
        "created_at timestamptz, last_login_at timestamptz, disabled boolean",
        "roles: Permission roles in the app | id int, name text",
        "user_roles: Roles granted to users | user_id bigint -> auth.users, role_id int -> auth.roles, "
        "granted_at timestamptz",
        "login_attempts: Every login, successful or failed | id bigint, user_id bigint -> auth.users, succeeded "
        "boolean, ip inet, attempted_at timestamptz",
        "api_keys: API keys of users | id bigint, user_id bigint -> auth.users, prefix text, created_at "
        "timestamptz, last_used_at timestamptz, revoked boolean",
        "audit_log: Security-relevant actions in the app | id bigint, user_id bigint -> auth.users, action text,"
        " target text, occurred_at timestamptz",
    ],
    "geo": [
        "countries: ISO countries | code char(2), name text, region_id int -> geo.regions, currency char(3)",
        "regions: Sales regions grouping countries | id int, name text",
        "cities: Cities | id int, name text, country_code char(2) -> geo.countries, population int",
        "stores: Physical shops | id int, name text, city_id int -> geo.cities, region_id int -> geo.regions, "
        "opened_on date, floor_m2 int",
        "store_hours: Opening hours of stores | store_id int -> geo.stores, weekday smallint, opens time, "
        "closes time",
    ],
    "saas": [
        "plans: Subscription plans and their monthly price | id int, name text, monthly_price numeric(10,2), "
        "seats int",
        "subscriptions: Paying subscriptions of customers | id bigint, customer_id bigint -> sales.customers, "
        "plan_id int -> saas.plans, status text, started_at timestamptz, cancelled_at timestamptz, mrr "
        "numeric(10,2)",
        "usage_records: Metered usage per subscription and day | id bigint, subscription_id bigint -> "
        "saas.subscriptions, usage_date date, metric text, quantity numeric",
        "feature_flags: Feature switches per customer account | id bigint, customer_id bigint -> "
        "sales.customers, flag text, enabled boolean, changed_at timestamptz",
    ],
}

# question -> tables its SQL needs (written against CORE before the ranking was tuned)
QUESTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("How many orders did we get last month?", ("sales.orders",)),
    ("What is the total revenue per customer country in 2024?", ("sales.orders", "sales.customers")),
    ("Which products sold the most units last week?", ("sales.order_items", "catalog.products", "sales.orders")),
    ("List employees on sick leave today", ("hr.employees", "hr.leave_requests")),
    ("Average salary by department", ("hr.salaries", "hr.employees", "hr.departments")),
    ("Which warehouses are running low on stock for any product?",
     ("inventory.stock_levels", "inventory.warehouses", "catalog.products")),
    ("How many support tickets breached their SLA this quarter?", ("support.tickets", "support.sla_policies")),
    ("What did we spend on ads per campaign in March?", ("marketing.ad_spend", "marketing.campaigns")),
    ("Show late shipments by carrier", ("logistics.shipments", "logistics.carriers")),
    ("Which customers have unpaid invoices older than 60 days?", ("finance.invoices", "sales.customers")),
    ("Conversion rate of each variant of the A/B test on the checkout page",
     ("web.ab_tests", "web.ab_test_assignments")),
    ("How many users failed to log in more than 5 times yesterday?", ("auth.login_attempts",)),
    ("Top 10 suppliers by purchase order value this year",
     ("inventory.purchase_orders", "inventory.purchase_order_lines", "catalog.suppliers")),
    ("Average customer satisfaction score per support agent",
     ("support.satisfaction_surveys", "support.tickets", "support.agents")),
    ("Refund rate per product category",
     ("sales.refunds", "sales.order_items", "catalog.products", "catalog.product_categories")),
    ("Which drivers made the most deliveries in June?", ("logistics.drivers", "logistics.shipments")),
    ("Monthly recurring revenue by plan", ("saas.subscriptions", "saas.plans")),
    ("Which promo codes were used most?", ("marketing.promo_codes", "sales.orders")),
    ("Page views per day for the pricing page", ("web.page_views",)),
    ("What was the EUR to USD exchange rate on the first of each month?", ("finance.exchange_rates",)),
    ("Headcount by office city", ("hr.employees", "geo.cities")),
    ("Which job applicants are in the interview stage?", ("hr.job_applicants",)),
    ("How many newsletter subscribers unsubscribed this month?", ("marketing.newsletter_subscribers",)),
    ("Email open rate per campaign", ("marketing.email_events", "marketing.email_sends", "marketing.campaigns")),
    ("Budget vs actual expenses per cost center",
     ("finance.budgets", "finance.expenses", "finance.cost_centers")),
    ("Which products have an average review rating below 3?", ("catalog.product_reviews", "catalog.products")),
    ("Stock movements of SKU ABC-123 in the Berlin warehouse",
     ("inventory.stock_movements", "catalog.products", "inventory.warehouses")),
    ("How many API keys have not been used for 90 days?", ("auth.api_keys",)),
    ("Quota attainment of each sales rep this quarter", ("sales.sales_reps", "sales.orders")),
    ("How many trial signups converted to paid subscriptions?", ("web.signups", "saas.subscriptions")),
    ("Average time to first response on tickets by priority", ("support.tickets",)),
    ("Which vehicles are due for maintenance?", ("logistics.vehicles",)),
    ("Journal entries whose debits and credits don't balance",
     ("finance.journal_entries", "finance.journal_lines")),
    ("Training completion rate per department",
     ("hr.training_enrollments", "hr.employees", "hr.departments")),
    ("Which customers have the beta dashboard feature enabled?", ("saas.feature_flags", "sales.customers")),
    ("Revenue by store region", ("sales.orders", "geo.stores", "geo.regions")),
    ("Open quotes that expire this week", ("sales.quotes",)),
    ("Tax collected per country last year", ("finance.invoices", "sales.customers")),
    ("Who approved the most expense reports?", ("finance.expenses", "hr.employees")),
    ("Sessions per device type over the last 7 days", ("web.sessions",)),
]

_FILLER_SUFFIXES = ("history", "audit", "backup", "snapshot", "daily", "archive_2019", "archive_2020",
                    "archive_2021", "archive_2022", "archive_2023", "old", "copy", "v2", "import")
_FILLER_PREFIXES = ("stg", "tmp", "raw", "etl", "bak")
_LEGACY_WORDS = ("cust", "ord", "prd", "inv", "emp", "acct", "txn", "loc", "sku", "pmt", "shp", "ven", "mst", "dtl",
                 "ref", "lkp", "xref", "hdr")
_EXTRA_COLUMNS = ("archived_at timestamptz", "snapshot_date date", "changed_by text", "change_type text",
                  "batch_id bigint", "loaded_at timestamptz", "source_file text", "row_hash text")


@dataclass(slots=True)
class TableSpec:
    schema: str
    name: str
    comment: str
    columns: list[tuple[str, str]]  # (name, type)
    foreign_keys: list[tuple[str, str]] = field(default_factory=list)  # (column, schema.table)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def _parse(schema: str, spec: str) -> TableSpec:
    head, _, cols = spec.partition(" | ")
    name, _, comment = head.partition(": ")
    table = TableSpec(schema, name, comment, [])
    for part in cols.split(", "):
        definition, _, target = part.partition(" -> ")
        col, _, col_type = definition.strip().partition(" ")
        table.columns.append((col, col_type))
        if target:
            table.foreign_keys.append((col, target.strip()))
    return table


def core_tables() -> list[TableSpec]:
    return [_parse(schema, spec) for schema, specs in CORE.items() for spec in specs]


def generate(n_tables: int = 500, *, seed: int = 7) -> list[TableSpec]:
    """The core tables plus generated clutter, exactly ``n_tables`` in all (deterministic for a seed)."""
    rng = random.Random(seed)
    core = core_tables()
    tables = list(core)
    names = {t.qualified for t in tables}
    legacy_i = 0
    while len(tables) < n_tables:
        base = rng.choice(core)
        roll = rng.random()
        if roll < 0.55:
            name, comment = f"{base.name}_{rng.choice(_FILLER_SUFFIXES)}", f"Copy of {base.qualified} ({{}})"
        elif roll < 0.8:
            name, comment = f"{rng.choice(_FILLER_PREFIXES)}_{base.name}", f"Load table for {base.qualified} ({{}})"
        elif roll < 0.9:
            word = rng.choice(base.columns)[0].removesuffix("_id")
            name, comment = f"{word}_types" if rng.random() < 0.5 else f"{word}_statuses", "Lookup values ({})"
        else:
            legacy_i += 1
            parts = rng.sample(_LEGACY_WORDS, 2)
            name, comment = f"tbl_{parts[0]}_{parts[1]}_{legacy_i}", "Migrated from the old ERP ({})"
        schema = "legacy" if name.startswith("tbl_") else base.schema
        if f"{schema}.{name}" in names:
            continue
        names.add(f"{schema}.{name}")
        columns = list(base.columns) if not name.endswith(("_types", "_statuses")) else [
            ("id", "int"), ("code", "text"), ("label", "text")]
        columns += [tuple(c.split(" ", 1)) for c in rng.sample(_EXTRA_COLUMNS, rng.randint(1, 3))]  # type: ignore[misc]
        note = rng.choice(("kept for audits", "nightly load", "do not use", "one-off fix", "reporting"))
        tables.append(TableSpec(schema, name, comment.format(note), columns))
    return tables


def ddl(tables: list[TableSpec], *, batch: int = 200) -> list[str]:
    """SQL batches: schemas, tables with comments, then foreign keys (each batch one transaction)."""
    schemas = sorted({t.schema for t in tables})
    out = ["\n".join(f"CREATE SCHEMA IF NOT EXISTS {s};" for s in schemas)]
    pk_of = {t.qualified: t.columns[0][0] for t in tables}
    for start in range(0, len(tables), batch):
        lines = []
        for t in tables[start:start + batch]:
            cols = []
            for i, (name, col_type) in enumerate(t.columns):
                cols.append(f"{name} {col_type}" + (" PRIMARY KEY" if i == 0 and name in ("id", "code") else ""))
            lines.append(f"CREATE TABLE {t.qualified} ({', '.join(cols)});")
            lines.append(f"COMMENT ON TABLE {t.qualified} IS '{t.comment.replace(chr(39), chr(39) * 2)}';")
        out.append("\n".join(lines))
    fks = [f"ALTER TABLE {t.qualified} ADD FOREIGN KEY ({col}) REFERENCES {target} ({pk_of[target]});"
           for t in tables for col, target in t.foreign_keys]
    out.append("\n".join(fks))
    return out


if __name__ == "__main__":
    for statement_batch in ddl(generate()):
        print(statement_batch)
