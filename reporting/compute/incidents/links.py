"""The service map: which pages, ticket issue types, feedback words and carts each
back-end service's users see, as configured or inferred from names."""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ...core.config import ServiceLinks
from ...core.rollups import Rollup

# Words that tie a service to what its users see; True: abandoned carts are its doing.
FAMILIES: dict[str, tuple[tuple[str, ...], bool]] = {
    "payments": (("pay", "checkout", "card", "billing", "refund", "authoriz"), True),
    "cart": (("cart", "basket", "checkout"), True),
    "accounts": (("login", "logon", "signin", "auth", "account", "password", "profile",
                  "user"), False),
    "search": (("search", "product", "catalog", "category"), False),
    "stock": (("stock", "inventory", "order", "shipping", "delivery"), False),
    "recommendations": (("recommend",), False),
}


# --- the service map -------------------------------------------------------------------

def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", str(text).lower())


def infer_links(service: str, endpoints: Sequence[str] = ()) -> ServiceLinks:
    """What users see of a service, from the words of its name and endpoints: each word
    picks the family with the longest keyword it starts with (payment-api: `pay`;
    /login: `login`; /payments/authorize: `authoriz`, not `auth`)."""
    words = _words(service) + [w for e in endpoints for w in _words(e)]
    picked = set()
    for w in words:
        best = max(((len(k), name) for name, (keys, _) in FAMILIES.items() for k in keys
                    if w.startswith(k)), default=None)
        if best:
            picked.add(best[1])
    chosen = [FAMILIES[name] for name in FAMILIES if name in picked]
    keys = tuple(dict.fromkeys(k for ks, _ in chosen for k in ks))
    return ServiceLinks(pages=tuple(f"*{k}*" for k in keys),
                        issue_types=tuple(f"*{k}*" for k in keys), feedback_words=keys,
                        carts=any(carts for _, carts in chosen))


def service_map(frames: Mapping[str, Any],
                configured: Mapping[str, ServiceLinks] | None = None
                ) -> dict[str, ServiceLinks]:
    """Links of every service in the API logs (the `requests` table of a rollup) or system
    metrics (`samples`): as configured, else inferred."""
    def table(f: Any, name: str) -> pd.DataFrame:
        return f.tables[name] if isinstance(f, Rollup) else f
    endpoints: dict[str, list[str]] = {}
    api = frames.get("api_logs")
    if api is not None and len(api):
        pairs = table(api, "requests")[["service_name", "endpoint"]].drop_duplicates()
        for service, endpoint in zip(pairs["service_name"].astype(str),
                                     pairs["endpoint"].astype(str)):
            endpoints.setdefault(service, []).append(endpoint)
    system = frames.get("system_metrics")
    if system is not None and len(system):
        for service in pd.unique(table(system, "samples")["service_name"].astype(str)):
            endpoints.setdefault(service, [])
    configured = configured or {}
    return {s: configured.get(s) or infer_links(s, e) for s, e in sorted(endpoints.items())}


def tied(links: Mapping[str, ServiceLinks], *, page: str | None = None,
         issue_type: str | None = None, carts: bool = False) -> tuple[str, ...]:
    """The services a page, an issue type or the abandoned carts belong to."""
    def match(name: str, patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatchcase(name.lower(), p.lower()) for p in patterns)
    return tuple(s for s, link in links.items()
                 if (page is not None and match(page, link.pages))
                 or (issue_type is not None and match(issue_type, link.issue_types))
                 or (carts and link.carts))
