"""One module per KPI domain: `compute(frames, period, thresholds) -> Section`, a pure
function; `base` holds the helpers they share."""
