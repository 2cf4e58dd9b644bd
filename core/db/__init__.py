"""PostgreSQL access: limited transactions, capped fetches, catalog, previews, own tables, audit rows, COPY export.
May import errors, messages, config, sqlguard (types) and sql_secrets only.
"""
