"""The data contract: each source's columns, types and rules, the high-volume sources,
and the columns an audience's filters slice on (design.md, "Input sources")."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Spec:
    """The data contract of one source (design.md, "Input sources")."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    time: str = "timestamp"                       # the column periods are cut on
    timestamps: tuple[str, ...] = ("timestamp",)
    # column -> (minimum, maximum, whole number?); None = unbounded
    numbers: dict[str, tuple[float | None, float | None, bool]] = field(default_factory=dict)
    categories: tuple[str, ...] = ()
    # (start, end) pairs: end before start is rejected
    order: tuple[tuple[str, str], ...] = ()
    # required columns that may be empty
    may_be_empty: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


SPECS: dict[str, Spec] = {s.name: s for s in (
    Spec("clickstream", ("user_id", "timestamp", "page", "element_clicked"), ("session_id",),
         categories=("page", "element_clicked")),
    Spec("cart_abandonment",
         ("user_id", "cart_id", "abandonment_time", "items_in_cart", "total_value"),
         time="abandonment_time", timestamps=("abandonment_time",),
         numbers={"items_in_cart": (0, None, True), "total_value": (0, None, False)}),
    Spec("page_load_times", ("page_url", "timestamp", "load_time_ms"),
         ("device", "lcp_ms", "inp_ms", "cls"),     # + Core Web Vitals, where RUM gives them
         numbers={"load_time_ms": (0, None, False), "lcp_ms": (0, None, False),
                  "inp_ms": (0, None, False), "cls": (0, None, False)},
         categories=("page_url", "device")),
    Spec("api_logs",
         ("timestamp", "endpoint", "status_code", "response_time_ms", "service_name"),
         ("method",),
         numbers={"status_code": (100, 599, True), "response_time_ms": (0, None, False)},
         categories=("endpoint", "service_name", "method")),
    Spec("user_feedback", ("user_id", "timestamp", "feedback_text", "rating"),
         numbers={"rating": (1, 5, True)}, may_be_empty=("feedback_text",)),
    Spec("session_tracking",
         ("session_id", "user_id", "start_time", "end_time", "page_sequence", "drop_off_page"),
         time="start_time", timestamps=("start_time", "end_time"),
         categories=("page_sequence", "drop_off_page"), order=(("start_time", "end_time"),)),
    Spec("support_tickets", ("ticket_id", "created_at", "status", "channel", "issue_type"),
         ("user_id", "resolved_at", "first_response_at", "priority", "csat"),
         time="created_at", timestamps=("created_at", "resolved_at", "first_response_at"),
         numbers={"csat": (1, 5, True)},
         categories=("status", "channel", "issue_type", "priority"),
         order=(("created_at", "resolved_at"), ("created_at", "first_response_at"))),
    Spec("system_metrics", ("timestamp", "service_name", "cpu_pct", "memory_pct"),
         ("host", "healthy"),
         numbers={"cpu_pct": (0, 100, False), "memory_pct": (0, 100, False),
                  "healthy": (0, 1, True)},
         categories=("service_name", "host")),
    # optional sources: a shop's orders (revenue, conversion) and its deploys
    Spec("orders", ("order_id", "user_id", "ordered_at", "value"), time="ordered_at",
         timestamps=("ordered_at",), numbers={"value": (0, None, False)}),
    Spec("deployments", ("deployed_at", "service", "version"), ("ended_at",),
         time="deployed_at", timestamps=("deployed_at", "ended_at"), categories=("service",),
         order=(("deployed_at", "ended_at"),)),
)}
SOURCE_NAMES: tuple[str, ...] = tuple(SPECS)
OPTIONAL_SOURCES = ("orders", "deployments")    # a shop without them still gets a report

# filter key -> the (source, column) pairs it restricts
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "services": (("api_logs", "service_name"), ("system_metrics", "service_name"),
                 ("deployments", "service")),
    "endpoints": (("api_logs", "endpoint"),),
    "pages": (("page_load_times", "page_url"), ("clickstream", "page"),
              ("session_tracking", "page_sequence")),   # sessions that visited a page
    "issue_types": (("support_tickets", "issue_type"),),
    "channels": (("support_tickets", "channel"),),
}
FILTER_KEYS = tuple(COLUMNS)

# Sources of occasional events (a deploy), not of traffic: a day without one is not a gap
# in the data, so they take no part in coverage, the data's span or the latest period.
EVENT_SOURCES = ("deployments",)

HIGH_VOLUME = ("api_logs", "page_load_times", "clickstream", "session_tracking",
               "system_metrics")
