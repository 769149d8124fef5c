"""Durable data (SQLAlchemy models, migrations, typed queries) and the Redis store.

Models are split by what they hold: ``clients``, ``keys``, ``residents``, ``consents``,
``audit``. Each module also offers the small typed query functions the web layer uses, so no
other package writes raw queries against these tables. ``ephemeral`` is the one Redis store.
"""
