"""PostgreSQL access: limited transactions, capped fetches, catalog queries, previews, own tables, COPY export.
May import errors, messages, config and sqlguard (types) only.
"""
