"""The one loader: plans each source's chunks, runs them (a local process pool or
Dask) through the same read -> validate -> reduce step, and merges the rollups."""
