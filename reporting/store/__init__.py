"""What lasts on disk: report folders and atomic writes, the archive index and its ledger,
archived rollups, published files and the job store. Imports only `core`."""
