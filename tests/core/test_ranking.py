"""Identifier-aware ranking: word splitting, stems, prefixes, synonyms, typos, and copies ranked below bases."""

from __future__ import annotations

from core.prompt.ranking import TableDoc, TableIndex, stem, terms, words


def test_identifiers_split_like_people_write_them() -> None:
    assert words("order_items") == ["order", "items"]
    assert words("OrderItems") == ["order", "items"]
    assert words("HTTPRequestLog") == ["http", "request", "log"]
    assert words("orders2019_bak") == ["orders", "2019", "bak"]
    assert words('"Kundenbestellungen" Ünïcode_Tåble') == ["kundenbestellungen", "ünïcode", "tåble"]


def test_stems_map_plurals_and_inflections_together() -> None:
    assert stem("categories") == stem("category") == "category"
    assert stem("addresses") == stem("address") == "address"
    assert stem("statuses") == stem("status") == "status"
    assert stem("orders") == "order"
    assert stem("shipped") == "ship"
    assert stem("billing") == "bill"
    assert terms("How many orders shipped?") == ["order", "ship"]


def _index(*docs: TableDoc) -> TableIndex:
    return TableIndex(docs)


def _top(index: TableIndex, question: str, n: int = 1) -> list[str]:
    return [f"{index.docs[i].schema}.{index.docs[i].name}" for i, _ in index.rank(question)[:n]]


def test_name_beats_column_beats_comment_and_whole_name_wins() -> None:
    index = _index(
        TableDoc("public", "orders", "Customer purchases", ("id", "customer_id", "total")),
        TableDoc("public", "orders_archive_2019", "Copy of public.orders", ("id", "customer_id", "total")),
        TableDoc("public", "customers", "People", ("id", "name", "country")),
        TableDoc("public", "stock_counts", "Inventory counts", ("id", "counted")),
    )
    assert _top(index, "how many orders per customer?", 2) == ["public.orders", "public.customers"]
    # "country" must not match stock_counts through the prefix "count": a prefix needs a real suffix.
    assert "public.stock_counts" not in _top(index, "customers by country", 3)


def test_prefix_synonym_and_typo_matches() -> None:
    index = _index(
        TableDoc("ops", "shipments", "Parcels", ("id", "sent_at")),
        TableDoc("hr", "employees", "Payroll", ("id", "name")),
        TableDoc("crm", "customers", "Buyers", ("id", "name")),
        TableDoc("fin", "payments", "Money in", ("id", "amount")),
    )
    assert _top(index, "what was shipped yesterday") == ["ops.shipments"]  # ship ~ shipment
    assert _top(index, "list all staff") == ["hr.employees"]  # synonym
    assert _top(index, "top clients") == ["crm.customers"]  # synonym
    assert _top(index, "emplyees hired in 2024") == ["hr.employees"]  # typo: trigram similarity
    assert _top(index, "payments received last week") == ["fin.payments"]


def test_previous_questions_keep_a_follow_up_on_its_tables() -> None:
    index = _index(TableDoc("s", "orders", "", ("id", "created_at")), TableDoc("s", "invoices", "", ("id",)))
    assert index.rank("and by month?") == []
    ranked = index.rank("and by month?", previous=["how many orders shipped?"])
    assert [index.docs[i].name for i, _ in ranked] == ["orders"]


def test_unrelated_question_ranks_nothing_and_hubs_are_the_fallback() -> None:
    index = _index(TableDoc("s", "a", links=1), TableDoc("s", "hub", links=9), TableDoc("s", "leaf"))
    assert index.rank("hello there") == []
    assert [index.docs[i].name for i in index.central(3)] == ["hub", "a"]


def test_ranking_5000_tables_is_fast() -> None:
    import time

    docs = [TableDoc(f"s{i % 20}", f"table_{i}_{['orders', 'items', 'users', 'events'][i % 4]}",
                     f"comment {i}", tuple(f"col_{j}" for j in range(12))) for i in range(5000)]
    started = time.perf_counter()
    index = TableIndex(docs)
    built = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(20):
        index.rank("how many orders and order items per user in events?")
    per_question = (time.perf_counter() - started) / 20
    # Generous bounds (a loaded CI machine): they catch an accidental quadratic, not a speed target (bench/ has those).
    assert built < 10.0 and per_question < 0.5, (built, per_question)
