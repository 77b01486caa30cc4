"""Backups and restores of a whole Landform: the database (an online SQLite
copy or a PostgreSQL logical dump), the stored files the database refers to,
and the analytics events accepted but not yet written, with a manifest that
lets a restore verify every byte first. ``service`` is the entry point."""
