"""Rows in: data folders, configured files and globs, SQL and access logs, validated and
reduced to rollups by one loader (`engine.load`). Imports only `core`."""
