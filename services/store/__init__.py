"""The dashlet store (PostgreSQL via asyncpg): the task table and its migrations, the read model,
the demo's tables, gauges of open work.
"""
