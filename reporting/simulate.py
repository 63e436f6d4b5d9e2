"""Realistic simulated exports for all ten sources, vectorised with numpy.

The same users and sessions run through every file: a session that finishes places an
order. Traffic has daily and weekly seasonality; latencies are lognormal with a long
tail; each service deploys a few times a week in office hours. In every block of 4
weeks a payment outage is injected (Wednesday of the block's third week, 10:00-12:00),
20 minutes after a deploy of payment-api, that shows in API errors and latency,
abandoned carts, orders, feedback, tickets and CPU; `incident_weeks` puts it in the
weeks named instead. Other faults (`Fault`, `suite_faults`: latency only, an error
burst, a night outage, a traffic drop, a level shift, a memory creep; `maintenance`: a
planned downtime) can be injected instead. What was injected is written to
`simulation.json` beside the data.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .core.errors import ReportError
from .store.files import atomic_path

API_ROWS_PER_WEEK = {"tiny": 10_000, "small": 50_000, "medium": 500_000, "large": 5_000_000}
DEFAULT_START = date(2026, 10, 19)   # a Monday: 4 weeks end with 2026-W46

SERVICES = {   # service -> (endpoints, share of traffic, median ms, POST share)
    "product-api": (["/products", "/products/{id}", "/search"], 0.34, 85, 0.0),
    "cart-service": (["/cart", "/cart/items"], 0.18, 60, 0.6),
    "payment-api": (["/checkout", "/payments/authorize"], 0.08, 240, 1.0),
    "user-service": (["/login", "/profile"], 0.14, 95, 0.3),
    "inventory-service": (["/stock/{sku}"], 0.14, 45, 0.0),
    "recommendation-api": (["/recommendations"], 0.12, 160, 0.0),
}
STATUS = np.array([200, 201, 204, 304, 400, 401, 404, 429, 500, 502, 503])
STATUS_P = np.array([0.9284, 0.02, 0.01, 0.012, 0.009, 0.005, 0.012, 0.003, 0.0004, 0.00015,
                     0.0001])
PATHS = [   # (steps, weight); drop-off is the last step unless the session finishes
    (["home"], 0.24), (["home", "product"], 0.18), (["home", "search", "product"], 0.14),
    (["home", "category", "product"], 0.10), (["home", "product", "cart"], 0.12),
    (["home", "product", "cart", "checkout"], 0.14),
    (["home", "search", "product", "cart", "checkout"], 0.08),
]
PAGE_URL = {"home": "/", "search": "/search", "category": "/category/shoes",
            "product": "/product/sneaker-x", "cart": "/cart", "checkout": "/checkout"}
PAGE_MS = {"home": 1100, "search": 1300, "category": 1500, "product": 1700, "cart": 1250,
           "checkout": 2100}
ELEMENTS = {
    "home": ["search_bar", "promo_banner", "category_link", "newsletter_signup", "logo"],
    "search": ["search_button", "filter_price", "result_link", "sort_dropdown"],
    "category": ["subcategory_link", "product_card", "filter_size"],
    "product": ["add_to_cart_button", "product_image", "size_selector", "add_to_wishlist",
                "product_description", "reviews_tab"],
    "cart": ["checkout_button", "apply_coupon", "remove_item", "quantity_stepper"],
    "checkout": ["pay_button", "address_form", "shipping_option", "card_form"],
}
DEVICES = np.array(["desktop", "mobile", "tablet"])
DEVICE_P = np.array([0.45, 0.47, 0.08])
DEVICE_SLOW = np.array([1.0, 1.45, 1.2])
FEEDBACK = {   # rating -> texts; includes negations, contractions and sarcasm on purpose
    5: ["Great UX and speed", "Everything worked smoothly", "Very fast loading, easy to use",
        "Love the new design", "Checkout was quick and easy", "Perfect, found my size fast",
        "Not bad at all, delivery options are clear", "Excellent service"],
    4: ["Good selection and fair prices", "Nice design, easy to find products",
        "The search isn't bad", "Works well on mobile", "Quick checkout, but shipping is pricey",
        "Helpful filters"],
    3: ["Nice design, a bit slow at payment", "OK overall", "Too many steps in checkout",
        "Average experience", "Delivery options are confusing"],
    2: ["Had to reload page twice", "Not responsive on mobile", "Page is slow to load",
        "Search results are poor", "Great, another error at checkout"],
    1: ["Checkout crashed after entering card details", "App froze during checkout",
        "Couldn't add product to cart", "Terrible experience, payment failed twice",
        "The worst checkout I have used"],
}
INCIDENT_FEEDBACK = ["Payment failed with an error, card was charged anyway",
                     "Checkout kept spinning and then crashed", "Could not pay, terrible",
                     "Payment page broken, gave up"]
ISSUES = np.array(["Login Issue", "Payment Failure", "Order Delay", "Product Inquiry",
                   "Refund Request", "Technical Bug", "Account Update"])
ISSUES_P = np.array([0.14, 0.10, 0.22, 0.20, 0.14, 0.10, 0.10])
CHANNELS = np.array(["Email", "Chat", "Phone", "Web form"])
CHANNELS_P = np.array([0.40, 0.35, 0.18, 0.07])
PRIORITY = np.array(["low", "normal", "high", "urgent"])
PRIORITY_P = np.array([0.25, 0.55, 0.15, 0.05])


@dataclass(frozen=True)
class Fault:
    """What the simulator injects in a window: how a service misbehaves and what its users
    do then. The defaults are the payment outage."""

    start: pd.Timestamp
    end: pd.Timestamp
    service: str = "payment-api"    # "" for a fault users feel without a back-end cause
    kind: str = "outage"
    error_rate: float = 0.38        # share of the service's requests that fail with 5xx
    latency_factor: float = 4.0
    traffic: float = 1.0            # share of the service's requests that still arrive
    cart_factor: float = 4.0        # abandoned carts in the window vs usual
    finish_p: float | None = 0.12   # chance a checkout session finishes (None: as usual)
    ticket_extra: int = 0           # set from the scale
    ticket_type: str = "Payment Failure"
    feedback: tuple[str, ...] = tuple(INCIDENT_FEEDBACK)   # what users write; () nothing
    slow_pages: tuple[str, ...] = ("checkout",)   # pages that load 2.5x slower
    cpu: bool = True                # CPU pinned and health probes failing
    memory_per_hour: float = 0.0    # memory creep, percentage points per hour
    deploy_before: int = 20         # minutes after a deploy of the service (0: none)


def maintenance(start: pd.Timestamp, end: pd.Timestamp, service: str = "inventory-service"
                ) -> Fault:
    """A planned downtime: every request of `service` fails with 5xx in the window, and
    users, told in advance, do nothing unusual."""
    return Fault(start, end, service, "maintenance", error_rate=1.0, latency_factor=1.0,
                 cart_factor=1.0, finish_p=None, feedback=(), slow_pages=(), cpu=False,
                 deploy_before=0)


def suite_faults(t0: pd.Timestamp) -> list[Fault]:
    """The benchmark's ten weeks from Monday `t0`: weeks 0-1 history, 2 and 8 quiet, then
    one fault a week: latency only (search), an evening error burst (login), a night
    outage (payments), a traffic drop (cart), the payment outage, and in week 9 a level
    shift (recommendations p95 +30 % from Tuesday 09:00) with a memory creep (inventory)."""
    def at(week: int, day: int, hour: int) -> pd.Timestamp:
        return t0 + pd.Timedelta(days=7 * week + day, hours=hour)

    quiet = dict(error_rate=0.0, latency_factor=1.0, cart_factor=1.0, finish_p=None,
                 ticket_extra=0, feedback=(), slow_pages=(), cpu=False)
    end = at(10, 0, 0)
    return [
        Fault(at(3, 1, 14), at(3, 1, 17), "product-api", "latency", **{
            **quiet, "latency_factor": 3.0, "slow_pages": ("search", "product", "category"),
            "feedback": ("Search is so slow today", "Search is terribly slow, gave up")}),
        Fault(at(4, 3, 19), at(4, 3, 21), "user-service", "errors", **{
            **quiet, "error_rate": 0.3, "ticket_extra": 8, "ticket_type": "Login Issue",
            "feedback": ("Login failed again, terrible", "Awful, the login is broken")}),
        Fault(at(5, 2, 2), at(5, 2, 4), "payment-api", "night", error_rate=0.5,
              ticket_extra=4),
        Fault(at(6, 1, 11), at(6, 1, 13), "cart-service", "traffic", **{
            **quiet, "traffic": 0.15, "cart_factor": 3.0, "finish_p": 0.3,
            "feedback": ("The cart is broken, terrible", "Cart page broken, gave up")}),
        Fault(at(7, 2, 10), at(7, 2, 12), ticket_extra=12),
        Fault(at(9, 1, 9), end, "recommendation-api", "level_shift",
              **{**quiet, "latency_factor": 1.3}),
        Fault(at(9, 0, 0), end, "inventory-service", "memory_creep",
              **{**quiet, "memory_per_hour": 0.15}),
    ]


def hour_weights(start: pd.Timestamp, hours_total: int) -> np.ndarray:
    """Traffic weight of each hour: a daily curve peaking late morning and evening,
    weekends at 80 %."""
    idx = pd.date_range(start, periods=hours_total, freq="h")
    h = idx.hour.to_numpy()
    daily = (0.15 + 0.85 * np.exp(-((h - 11) ** 2) / 18) + 0.7 * np.exp(-((h - 20) ** 2) / 8))
    weekend = np.where(idx.day_of_week.to_numpy() >= 5, 0.8, 1.0)
    w = daily * weekend
    return w / w.sum()


def seasonal_times(rng: np.random.Generator, n: int, start: pd.Timestamp, weights: np.ndarray
                   ) -> np.ndarray:
    """n timestamps (int64 seconds since epoch) following the hourly weights, sorted."""
    hours = rng.choice(len(weights), size=n, p=weights)
    secs = hours.astype("int64") * 3600 + rng.integers(0, 3600, n)
    return np.sort(start.value // 10**9 + secs)


def simulate(out: Path, weeks: int = 4, scale: str = "small", seed: int = 7,
             start: date = DEFAULT_START, fmt: str = "csv",
             incident_weeks: list[int] | None = None,
             faults: list[Fault] | None = None,
             api_rows_per_week: int | None = None) -> dict[str, int]:
    """Write the ten sources to `out`; returns rows written per source.
    `api_rows_per_week` replaces the scale's API rows a week (the other sources in
    proportion, system metrics as the scale's): a benchmark's size between two scales.
    `incident_weeks` (1 = the first simulated week; [] for none) says which weeks hold
    the payment outage, by default the third week of every block of 4; `faults`
    replaces those outages."""
    if scale not in API_ROWS_PER_WEEK:
        raise ReportError(f"--scale must be one of {', '.join(API_ROWS_PER_WEEK)}, "
                          f"not {scale!r}.")
    if weeks < 1:
        raise ReportError("--weeks must be 1 or more.")
    if start.weekday() != 0:
        start -= timedelta(days=start.weekday())
    if incident_weeks is None:
        incident_weeks = [b + 3 for b in range(0, weeks, 4) if b + 2 < weeks]
    if any(not 1 <= w <= weeks for w in incident_weeks):
        raise ReportError(f"--incident-week must be between 1 and --weeks ({weeks}), "
                          f"not {', '.join(map(str, incident_weeks))}.")
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start, tz="UTC")
    hours_total = weeks * 7 * 24
    weights = hour_weights(t0, hours_total)
    per_week = api_rows_per_week or API_ROWS_PER_WEEK[scale]
    k = per_week / 50_000 * weeks
    incidents = faults if faults is not None else [
        Fault(t0 + pd.Timedelta(days=7 * (w - 1) + 2, hours=10),
              t0 + pd.Timedelta(days=7 * (w - 1) + 2, hours=12),
              ticket_extra=max(6, int(round(12 * k / weeks))))
        for w in sorted(set(incident_weeks))]

    n_users = int(4000 * k ** 0.8)
    users = np.char.add("U", np.char.zfill(np.arange(1, n_users + 1).astype(str), 6))
    frames: dict[str, pd.DataFrame] = {}
    sessions, steps_arr, n_steps, pushed = _sessions(
        rng, int(5200 * k), t0, weights, users, incidents,
        t0.value // 10**9 + hours_total * 3600 - 1)
    frames["session_tracking"] = sessions
    frames["clickstream"] = _clicks(rng, sessions, steps_arr, n_steps)
    frames["page_load_times"] = _page_loads(rng, sessions, steps_arr, n_steps, incidents)
    frames["cart_abandonment"], injected_carts = _carts(rng, sessions, pushed, t0, weights,
                                                        incidents)
    frames["user_feedback"] = _feedback(rng, sessions, incidents)
    frames["api_logs"] = _api(rng, int(per_week * weeks), t0, weights,
                              incidents)
    frames["support_tickets"] = _tickets(rng, int(160 * k), t0, weights, users, incidents,
                                         t0 + pd.Timedelta(hours=hours_total))
    frames["system_metrics"] = _system(rng, t0, hours_total, scale, incidents)
    # The optional sources draw from a generator of their own: the eight above stay as
    # they were before orders and deploys were simulated.
    more = np.random.default_rng([seed, 1])
    frames["orders"] = _orders(more, sessions)
    frames["deployments"] = _deployments(more, t0, weeks, incidents)

    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, frame in frames.items():
        _write(frame, out / f"{name}.{fmt}", fmt)
        for other in ("csv", "parquet"):
            stale = out / f"{name}.{other}"
            if other != fmt and stale.exists():
                stale.unlink()
        counts[name] = len(frame)
    meta = {"seed": seed, "scale": scale, "weeks": weeks, "start": t0.isoformat(),
            "rows": counts, "incidents": [
                {"start": i.start.isoformat(), "end": i.end.isoformat(), "service": i.service,
                 "kind": i.kind, "error_rate": i.error_rate,
                 "latency_factor": i.latency_factor,
                 "extra_abandoned_carts": injected_carts[j][0],
                 "extra_abandoned_value": round(injected_carts[j][1], 2),
                 "extra_tickets": i.ticket_extra, "extra_ticket_type": i.ticket_type,
                 "deployed_minutes_before": i.deploy_before if i.service in SERVICES else 0}
                for j, i in enumerate(incidents)]}
    (out / "simulation.json").write_text(json.dumps(meta, indent=2) + "\n")
    return counts


def _in(ts: np.ndarray, inc: Fault) -> np.ndarray:
    return (ts >= inc.start.value // 10**9) & (ts < inc.end.value // 10**9)


def _to_time(secs: np.ndarray) -> pd.DatetimeIndex:
    return pd.to_datetime(np.asarray(secs, dtype="int64"), unit="s", utc=True)


def _epoch(values) -> np.ndarray:
    """Whole seconds since 1970 of datetimes of any resolution."""
    idx = pd.DatetimeIndex(values)
    return idx.as_unit("s").asi8 if len(idx) else np.array([], dtype="int64")


def _sessions(rng, n, t0, weights, users, incidents, last_second):
    weights_p = np.array([w for _, w in PATHS])
    path_id = rng.choice(len(PATHS), size=n, p=weights_p / weights_p.sum())
    n_steps = np.array([len(p) for p, _ in PATHS])[path_id]
    width = max(len(p) for p, _ in PATHS)
    table = np.array([p + [""] * (width - len(p)) for p, _ in PATHS])
    steps_arr = table[path_id]
    start = seasonal_times(rng, n, t0, weights)
    minutes = rng.lognormal(np.log(1.6), 0.6, n) * n_steps
    # Sessions still open when the export ends are cut at its last second.
    end = np.minimum(start + (minutes * 60).astype("int64"), last_second)
    reaches_checkout = steps_arr[np.arange(n), n_steps - 1] == "checkout"
    p_finish = np.full(n, 0.62)
    for inc in incidents:
        if inc.finish_p is not None:
            p_finish[_in(start, inc)] = inc.finish_p
    u = rng.random(n)
    finished = reaches_checkout & (u < p_finish)
    # Sessions that would have finished but for the outage: their carts are its doing.
    pushed = reaches_checkout & (u < 0.62) & ~finished
    last = steps_arr[np.arange(n), n_steps - 1]
    drop = np.where(finished, "none", last)
    seq = steps_arr[:, 0].astype(object)
    for j in range(1, width):
        has = n_steps > j
        seq = np.where(has, seq + " > " + steps_arr[:, j], seq)
    frame = pd.DataFrame({
        "session_id": np.char.add("S", np.char.zfill(np.arange(1, n + 1).astype(str), 8)),
        "user_id": users[rng.integers(0, len(users), n)],
        "start_time": _to_time(start), "end_time": _to_time(end),
        "page_sequence": seq.astype(str), "drop_off_page": drop,
    })
    return frame, steps_arr, n_steps, pushed


def _clicks(rng, sessions, steps_arr, n_steps):
    n = len(sessions)
    per = rng.poisson(1.3 * n_steps) + 1
    idx = np.repeat(np.arange(n), per)
    step = (rng.random(len(idx)) * n_steps[idx]).astype(int)
    page = steps_arr[idx, step]
    element = np.empty(len(idx), dtype=object)
    for p, els in ELEMENTS.items():
        m = page == p
        element[m] = np.array(els)[rng.integers(0, len(els), m.sum())]
    start = sessions["start_time"].to_numpy()[idx]
    span = (sessions["end_time"].to_numpy() - sessions["start_time"].to_numpy())[idx]
    ts = start + (span * ((step + rng.random(len(idx))) / n_steps[idx])).astype(span.dtype)
    frame = pd.DataFrame({"user_id": sessions["user_id"].to_numpy()[idx],
                          "timestamp": _to_time(_epoch(ts)),
                          "page": page, "element_clicked": element.astype(str),
                          "session_id": sessions["session_id"].to_numpy()[idx]})
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _page_loads(rng, sessions, steps_arr, n_steps, incidents):
    n = len(sessions)
    idx = np.repeat(np.arange(n), n_steps)
    step = np.concatenate([np.arange(k) for k in n_steps]) if n else np.array([], int)
    page = steps_arr[idx, step]
    device_of_session = rng.choice(len(DEVICES), size=n, p=DEVICE_P)
    dev = device_of_session[idx]
    base = np.vectorize(PAGE_MS.get, otypes=[float])(page) if len(page) else np.array([])
    ms = base * DEVICE_SLOW[dev] * rng.lognormal(0, 0.45, len(idx))
    tail = rng.random(len(idx)) < 0.02
    ms[tail] *= rng.uniform(2, 5, tail.sum())
    start = sessions["start_time"].to_numpy()[idx]
    span = (sessions["end_time"].to_numpy() - sessions["start_time"].to_numpy())[idx]
    ts = start + (span * (step / n_steps[idx])).astype(span.dtype)
    secs = _epoch(ts)
    for inc in incidents:
        m = _in(secs, inc) & np.isin(page, inc.slow_pages)
        ms[m] *= 2.5
    url = np.vectorize(PAGE_URL.get, otypes=[object])(page) if len(page) else page
    frame = pd.DataFrame({"page_url": url.astype(str), "timestamp": _to_time(secs),
                          "load_time_ms": np.round(ms, 0), "device": DEVICES[dev]})
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _cart_rows(rng, n, users):
    items = rng.integers(1, 7, n)
    value = np.round(items * rng.lognormal(np.log(32), 0.5, n), 2)
    return items, value


def _carts(rng, sessions, pushed, t0, weights, incidents):
    """Carts of sessions dropped at cart or checkout, plus the outage's extra ones; `pushed`
    marks the sessions that would have finished but for an outage."""
    dropped = sessions["drop_off_page"].isin(["cart", "checkout"]).to_numpy()
    s = sessions.loc[dropped]
    pushed = pushed[dropped]
    n = len(s)
    items, value = _cart_rows(rng, n, None)
    secs = s["end_time"].to_numpy()
    users = s["user_id"].to_numpy()
    injected = []
    extra_t, extra_u, extra_i, extra_v = [], [], [], []
    end_secs = _epoch(secs)
    for inc in incidents:
        usual = _in(end_secs, inc).sum()
        extra = int(round(usual * (inc.cart_factor - 1)))
        m = max(extra, 0)
        t = rng.integers(inc.start.value // 10**9, inc.end.value // 10**9, m)
        it, val = _cart_rows(rng, m, None)
        val = np.round(val * 1.3, 2)   # checkout-stage carts are the fuller ones
        extra_t.append(t), extra_u.append(users[rng.integers(0, max(n, 1), m)] if n else
                                          np.array(["U000001"] * m))
        extra_i.append(it), extra_v.append(val)
        caused = pushed & _in(end_secs, inc)
        injected.append((m + int(caused.sum()), float(val.sum() + value[caused].sum())))
    all_secs = np.concatenate([end_secs] + extra_t) if extra_t else end_secs
    frame = pd.DataFrame({
        "user_id": np.concatenate([users] + extra_u) if extra_u else users,
        "abandonment_time": _to_time(all_secs),
        "items_in_cart": np.concatenate([items] + extra_i) if extra_i else items,
        "total_value": np.concatenate([value] + extra_v) if extra_v else value,
    }).sort_values("abandonment_time", kind="stable").reset_index(drop=True)
    frame.insert(1, "cart_id", np.char.add("C", np.char.zfill(
        np.arange(1, len(frame) + 1).astype(str), 8)))
    return frame[["user_id", "cart_id", "abandonment_time", "items_in_cart", "total_value"]], \
        injected


def _feedback(rng, sessions, incidents):
    n = len(sessions)
    pick = rng.random(n) < 0.06
    s = sessions.loc[pick]
    m = len(s)
    finished = (s["drop_off_page"] == "none").to_numpy()
    p_good = np.array([0.04, 0.08, 0.16, 0.34, 0.38])
    p_bad = np.array([0.14, 0.22, 0.26, 0.24, 0.14])
    rating = np.where(finished, rng.choice(5, m, p=p_good), rng.choice(5, m, p=p_bad)) + 1
    texts = np.empty(m, dtype=object)
    for r, options in FEEDBACK.items():
        sel = rating == r
        texts[sel] = np.array(options, dtype=object)[rng.integers(0, len(options), sel.sum())]
    secs = _epoch(s["end_time"])
    for inc in incidents:
        if not inc.feedback:
            continue
        hit = _in(secs, inc) | _in(secs - 1800, inc)
        rating[hit] = rng.choice([1, 2], hit.sum(), p=[0.7, 0.3])
        texts[hit] = np.array(inc.feedback, dtype=object)[
            rng.integers(0, len(inc.feedback), hit.sum())]
    return pd.DataFrame({"user_id": s["user_id"].to_numpy(),
                         "timestamp": s["end_time"].to_numpy(),
                         "feedback_text": texts.astype(str), "rating": rating})


def _api(rng, n, t0, weights, incidents):
    names = list(SERVICES)
    shares = np.array([SERVICES[s][1] for s in names])
    secs = seasonal_times(rng, n, t0, weights)
    svc = rng.choice(len(names), n, p=shares / shares.sum())
    endpoint = np.empty(n, dtype=object)
    method = np.full(n, "GET", dtype=object)
    median = np.empty(n)
    for i, name in enumerate(names):
        eps, _, med, post = SERVICES[name]
        m = svc == i
        endpoint[m] = np.array(eps, dtype=object)[rng.integers(0, len(eps), m.sum())]
        method[m & (rng.random(n) < post)] = "POST"
        median[m] = med
    latency = median * rng.lognormal(0, 0.55, n)
    tail = rng.random(n) < 0.01
    latency[tail] *= rng.uniform(4, 12, tail.sum())
    status = STATUS[rng.choice(len(STATUS), n, p=STATUS_P / STATUS_P.sum())]
    keep = np.ones(n, bool)
    for inc in incidents:
        if inc.service not in names:
            continue
        m = _in(secs, inc) & (svc == names.index(inc.service))
        fail = m & (rng.random(n) < inc.error_rate)
        status[fail] = rng.choice([500, 502, 503], fail.sum(), p=[0.5, 0.3, 0.2])
        latency[m] *= inc.latency_factor
        if inc.traffic < 1:   # requests that never arrive
            keep &= ~(m & (rng.random(n) >= inc.traffic))
    return pd.DataFrame({"timestamp": _to_time(secs), "endpoint": endpoint.astype(str),
                         "status_code": status, "response_time_ms": np.round(latency, 1),
                         "service_name": np.array(names)[svc], "method": method.astype(str)}
                        )[keep].reset_index(drop=True)


def _tickets(rng, n, t0, weights, users, incidents, data_end):
    # Tickets arrive mostly in business hours.
    idx = pd.date_range(t0, periods=len(weights), freq="h")
    office = np.where((idx.hour >= 8) & (idx.hour < 19), 1.0, 0.25)
    w = weights * office
    secs = seasonal_times(rng, n, t0, w / w.sum())
    issue = ISSUES[rng.choice(len(ISSUES), n, p=ISSUES_P)]
    extra_secs = [rng.integers(inc.start.value // 10**9, inc.end.value // 10**9,
                               inc.ticket_extra) for inc in incidents]
    if extra_secs:
        secs = np.concatenate([secs] + extra_secs)
        issue = np.concatenate([issue] + [np.full(len(e), inc.ticket_type)
                                          for e, inc in zip(extra_secs, incidents)])
    order = np.argsort(secs, kind="stable")
    secs, issue = secs[order], issue[order]
    m = len(secs)
    channel = CHANNELS[rng.choice(len(CHANNELS), m, p=CHANNELS_P)]
    first = (rng.lognormal(np.log(1.5), 0.9, m) * np.where(channel == "Chat", 0.15, 1) * 3600)
    resolve = rng.lognormal(np.log(11), 0.95, m) * 3600
    resolved_at = secs + resolve.astype("int64")
    is_open = resolved_at >= data_end.value // 10**9
    status = np.where(is_open, np.where(rng.random(m) < 0.3, "Pending", "Open"), "Resolved")
    csat = np.where(~is_open & (rng.random(m) < 0.6),
                    np.clip(np.round(5 - resolve / 3600 / 12 + rng.normal(0, 0.8, m)), 1, 5),
                    np.nan)
    return pd.DataFrame({
        "ticket_id": np.char.add("T", np.char.zfill(np.arange(1, m + 1).astype(str), 7)),
        "user_id": users[rng.integers(0, len(users), m)],
        "issue_type": issue, "created_at": _to_time(secs),
        "first_response_at": _to_time(secs + first.astype("int64")),
        "resolved_at": pd.Series(_to_time(resolved_at)).where(~is_open),
        "status": status, "channel": channel,
        "priority": PRIORITY[rng.choice(len(PRIORITY), m, p=PRIORITY_P)],
        "csat": csat,
    })


def _system(rng, t0, hours_total, scale, incidents):
    step = {"tiny": 600, "small": 300, "medium": 60, "large": 60}[scale]
    hosts = {"tiny": 1, "small": 1, "medium": 2, "large": 3}[scale]
    times = t0.value // 10**9 + np.arange(0, hours_total * 3600, step)
    names = list(SERVICES)
    base_cpu = {"product-api": 38, "cart-service": 30, "payment-api": 34, "user-service": 26,
                "inventory-service": 22, "recommendation-api": 52}
    rows = []
    hour = ((times // 3600) % 24).astype(float)
    load = np.exp(-((hour - 11) ** 2) / 18) + 0.7 * np.exp(-((hour - 20) ** 2) / 8)
    for name in names:
        for h in range(hosts):
            n = len(times)
            cpu = base_cpu[name] + 22 * load + rng.normal(0, 4, n)
            mem = 48 + 10 * np.sin(times / 86400 * 2 * np.pi / 7) + rng.normal(0, 3, n) + h * 2
            healthy = (rng.random(n) > 0.0015).astype(int)
            for inc in incidents:
                if name == inc.service and inc.cpu:
                    m = _in(times, inc)
                    cpu[m] = rng.uniform(94, 100, m.sum())
                    healthy[m & (rng.random(n) < 0.35)] = 0
                if name == inc.service and inc.memory_per_hour:
                    m = _in(times, inc)
                    mem[m] += inc.memory_per_hour * (times[m] - inc.start.value // 10**9) / 3600
            rows.append(pd.DataFrame({
                "timestamp": _to_time(times), "service_name": name,
                "host": f"{name}-{h + 1}", "cpu_pct": np.round(np.clip(cpu, 0, 100), 1),
                "memory_pct": np.round(np.clip(mem, 0, 100), 1), "healthy": healthy}))
    return pd.concat(rows, ignore_index=True).sort_values("timestamp", kind="stable") \
        .reset_index(drop=True)


def _orders(rng, sessions):
    """One order per session that finished, placed when it ended; values like carts'."""
    done = sessions.loc[(sessions["drop_off_page"] == "none").to_numpy()]
    items, value = _cart_rows(rng, len(done), None)
    frame = pd.DataFrame({"user_id": done["user_id"].to_numpy(),
                          "ordered_at": done["end_time"].to_numpy(), "value": value})
    frame = frame.sort_values("ordered_at", kind="stable").reset_index(drop=True)
    frame.insert(0, "order_id", np.char.add("O", np.char.zfill(
        np.arange(1, len(frame) + 1).astype(str), 7)))
    return frame


def _deployments(rng, t0, weeks, incidents):
    """Each service deploys on about 2 working days a week, in office hours, its version
    counting up; a fault's service deployed `deploy_before` minutes before it began."""
    days = pd.date_range(t0, periods=weeks * 7, freq="D")
    workdays = days[days.day_of_week < 5]
    rows = []
    for i, name in enumerate(SERVICES):
        picked = workdays[rng.random(len(workdays)) < 0.4]
        starts = picked + pd.to_timedelta(rng.integers(9 * 60, 17 * 60, len(picked)),
                                          unit="min")
        rows += [(name, t) for t in starts]
    rows += [(inc.service, inc.start - pd.Timedelta(minutes=inc.deploy_before))
             for inc in incidents if inc.service in SERVICES and inc.deploy_before]
    frame = pd.DataFrame(rows, columns=["service", "deployed_at"]).sort_values(
        "deployed_at", kind="stable").reset_index(drop=True)
    n = frame.groupby("service").cumcount().to_numpy() + 1
    minor = {name: 10 + 3 * i for i, name in enumerate(SERVICES)}
    frame["version"] = [f"2.{minor[s] + k // 10}.{k % 10}" for s, k in
                        zip(frame["service"], n)]
    took = pd.to_timedelta(rng.integers(4, 19, len(frame)), unit="min")
    frame["ended_at"] = frame["deployed_at"] + took
    return frame[["deployed_at", "service", "version", "ended_at"]]


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """Write via pyarrow (fast for millions of rows), to a temporary name then rename."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            pq.write_table(table, tmp, compression="zstd")
        else:
            pacsv.write_csv(table, tmp)
