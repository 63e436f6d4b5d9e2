"""Numbers from rows and rollups: the sections (KPIs, incidents, trends), coverage, slices
and the kpis.json document. Imports `core` and `store` (the archive's history)."""
