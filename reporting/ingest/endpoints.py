"""Endpoints and services of logged requests: the path without its query string, numeric,
long hex and UUID segments folded to `{id}` so the number of endpoints stays bounded; the
service is the longest configured path prefix's, else the host (when logged), else
"other"."""
from __future__ import annotations

import re

import pandas as pd

ID_SEGMENT = re.compile(
    r"(?<=/)(?:\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,})(?=/|$)")


def fold_endpoint(paths: pd.Series) -> pd.Series:
    """Path without query string or host, with id-like segments as {id}."""
    uniq = pd.Series(pd.unique(paths.astype("str")))
    clean = (uniq.str.replace(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*", "", regex=True)
             .str.replace(r"[?#].*$", "", regex=True)
             .str.replace(ID_SEGMENT, "{id}", regex=True))
    clean = clean.where(clean != "", "/")
    return paths.astype("str").map(dict(zip(uniq, clean)))


def service_of(endpoints: pd.Series, services: dict[str, str], hosts: pd.Series | None
               ) -> pd.Series:
    """The longest configured prefix's service; else the host; else "other"."""
    uniq = pd.unique(endpoints.astype("str"))
    prefixes = sorted(services, key=len, reverse=True)

    def pick(path: str) -> str | None:
        for p in prefixes:
            if path == p or path.startswith(p.rstrip("/") + "/"):
                return services[p]
        return None

    mapped = endpoints.map({u: pick(u) for u in uniq})
    if hosts is None:
        fallback = "other"
    else:
        fallback = pd.Series(hosts.astype("str").str.split(":").str[0].to_numpy(),
                             index=mapped.index)
        fallback = fallback.where(~fallback.isin(["", "-", "nan", "None"]), "other")
    return mapped.where(mapped.notna(), fallback)
