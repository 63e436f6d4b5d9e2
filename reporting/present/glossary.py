"""What each KPI counts and how it is judged, for the glossary that ends every PDF."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..core import formatting as fmt
from ..core.config import Thresholds
from ..core.i18n import N_
from ..core.i18n import gettext as _

# key -> what is counted, in words a manager reads
MEANING = {
    "api.requests": N_("API calls logged in the period."),
    "api.server_errors": N_("API calls answered with a 5xx status (the server failed)."),
    "api.server_error_rate": N_("Share of API calls answered with a 5xx status."),
    "api.client_error_rate": N_("Share of API calls answered with a 4xx status (a bad request)."),
    "api.availability": N_("Share of API calls without a server error (1 − 5xx rate)."),
    "api.p50_ms": N_("Half of the API calls were answered faster than this."),
    "api.p95_ms": N_("95 % of the API calls were answered faster than this."),
    "api.p99_ms": N_("99 % of the API calls were answered faster than this."),
    "api.mean_ms": N_("Average API response time."),
    "api.error_budget_used": N_("Server errors as a share of the errors the availability target "
                             "allows over the period."),
    "api.max_burn_rate": N_("The worst hour's 5xx rate divided by the rate the target allows; "
                         "1x spends the budget exactly over the period."),
    "api.apdex": N_("Satisfied calls (≤ T) plus half the tolerating ones (≤ 4T), over the "
                 "calls with a response time; server errors count as frustrated."),
    "api.budget_remaining_rolling": N_("Share of the error budget left over the rolling window "
                                    "that ends with the period: 1 − server errors / errors "
                                    "the availability target allows; below 0 it is overspent."),
    "api.burn_rate_rolling": N_("The rolling window's 5xx rate divided by the rate the target "
                             "allows; 1x spends the window's budget exactly."),
    "pages.lcp_p75_ms": N_("Largest Contentful Paint: 75 % of the page loads that report it "
                        "showed their main content faster than this (Core Web Vital)."),
    "pages.inp_p75_ms": N_("Interaction to Next Paint: 75 % of the page loads that report it "
                        "answered their slowest interaction faster than this (Core Web Vital)."),
    "pages.cls_p75": N_("Cumulative Layout Shift: 75 % of the page loads that report it moved "
                     "their layout less than this (Core Web Vital, no unit)."),
    "pages.views": N_("Page loads measured."),
    "pages.p75_load_ms": N_("75 % of page loads finished faster than this."),
    "pages.mean_load_ms": N_("Average page load time."),
    "pages.p50_load_ms": N_("Half of the page loads finished faster than this."),
    "pages.p95_load_ms": N_("95 % of the page loads finished faster than this."),
    "pages.good_share": N_("Share of page loads within the good band."),
    "pages.poor_share": N_("Share of page loads in the poor band."),
    "clicks.total": N_("Clicks recorded."),
    "clicks.unique_users": N_("Different users who clicked."),
    "clicks.clicks_per_user": N_("Clicks divided by the users who clicked."),
    "cart.abandoned_carts": N_("Carts left without buying."),
    "cart.abandoned_value": N_("Total value of the carts left without buying."),
    "cart.avg_value": N_("Average value of an abandoned cart."),
    "cart.avg_items": N_("Average number of items in an abandoned cart."),
    "cart.abandoned_share": N_("Abandoned cart value as a share of abandoned value plus revenue "
                            "(the orders' value)."),
    "orders.revenue": N_("Value of the orders placed in the period."),
    "orders.orders": N_("Orders placed in the period."),
    "orders.conversion_rate": N_("Orders / sessions started in the period."),
    "orders.avg_order_value": N_("Revenue divided by orders."),
    "sessions.count": N_("Visits (sessions) that started in the period."),
    "sessions.avg_duration_min": N_("Average time from a session's start to its end."),
    "sessions.median_duration_min": N_("Half of the sessions were shorter than this."),
    "sessions.bounce_rate": N_("Share of sessions that saw one page only."),
    "sessions.completion_rate": N_("Share of sessions that finished (bought), drop-off page "
                                   "'none'."),
    "sessions.pages_per_session": N_("Average number of pages a session saw."),
    "sessions.checkout_conversion": N_("Of the sessions that reached the cart, the share that "
                                    "finished."),
    "feedback.responses": N_("Feedback answers received."),
    "feedback.avg_rating": N_("Average star rating (1-5)."),
    "feedback.csat": N_("Share of the feedback form's ratings with 4 or 5 stars (not the "
                     "tickets' CSAT)."),
    "feedback.positive_share": N_("Share of comments whose wording reads positive (TextBlob)."),
    "feedback.negative_share": N_("Share of comments whose wording reads negative (TextBlob)."),
    "feedback.mismatch_rate": N_("Among comments with opinion words, the share whose wording "
                              "contradicts the stars."),
    "support.tickets": N_("Tickets opened in the period."),
    "support.open_backlog": N_("Tickets still open at the end of the period."),
    "support.backlog_median_age_h": N_("Half of the tickets open at the end of the period had "
                                    "been open for less than this."),
    "support.net_flow": N_("Tickets opened minus tickets resolved; above 0 the backlog grows."),
    "support.median_first_response_h": N_("Half of the tickets got a first answer faster "
                                          "than this."),
    "support.median_resolution_h": N_("Half of the resolved tickets were resolved faster "
                                      "than this."),
    "support.p90_resolution_h": N_("90 % of the resolved tickets were resolved faster than this."),
    "support.sla_breach_rate": N_("Share of resolved tickets that took longer than their "
                               "priority's SLA."),
    "support.first_response_sla_breach": N_("Share of the new tickets answered later than the "
                                         "first-response target (one still unanswered counts "
                                         "once it has waited that long)."),
    "support.ticket_csat": N_("Of the rated tickets opened in the period, the share rated 4 "
                           "or 5 (the tickets' csat, not the feedback form's)."),
    "support.rated_tickets": N_("Tickets opened in the period that carry a CSAT rating."),
    "system.cpu_p95_pct": N_("95 % of the CPU samples were below this."),
    "system.memory_p95_pct": N_("95 % of the memory samples were below this."),
    "system.uptime": N_("Share of health probes that found the service healthy."),
}


def _bands(t: Thresholds) -> dict[str, str]:
    """key -> how the status is judged and where the target comes from (config values),
    in the page's voice."""
    budget = 1 - t.availability_slo
    pct: Callable[[float], str] = fmt.pct
    g, ms = fmt.short, fmt.ms
    hours = {"sla": g(t.support_sla_hours), "warn": g(1.25 * t.support_sla_hours),
             "first": g(t.support_first_response_hours), "priorities": _priorities(t)}
    return {
        "api.server_error_rate": _("good ≤ %(good)s, warn ≤ %(warn)s: the %(slo)s availability "
                                   "target (thresholds.availability_slo).") % {
            "good": pct(budget), "warn": pct(2 * budget), "slo": pct(t.availability_slo)},
        "api.availability": _("good ≥ %(good)s (thresholds.availability_slo), warn ≥ "
                              "%(warn)s.") % {"good": pct(t.availability_slo),
                                               "warn": pct(1 - 2 * budget)},
        "api.p95_ms": _("good ≤ %(good)s, warn ≤ %(warn)s (thresholds.api_p95_ms).") % {
            "good": ms(t.api_p95_ms), "warn": ms(1.25 * t.api_p95_ms)},
        "api.error_budget_used": _("good ≤ 75 %, warn ≤ 100 %."),
        "api.max_burn_rate": _("good ≤ 1x, warn ≤ %(page)sx, the rate at which Google's SRE "
                               "workbook pages someone over one hour.") % {
            "page": g(t.burn_rate_page)},
        "api.apdex": _("good ≥ %(good)s, warn ≥ %(warn)s (T = %(t)s, thresholds.apdex_t_ms).")
        % {"good": fmt.number(0.85, 2), "warn": fmt.number(0.70, 2), "t": ms(t.apdex_t_ms)},
        "pages.p75_load_ms": _("good ≤ %(good)s, poor above %(poor)s: web.dev's LCP bands, "
                               "borrowed (load time is not LCP).") % {
            "good": ms(t.page_p75_ms), "poor": ms(t.page_poor_ms)},
        "pages.good_share": _("loads ≤ %(good)s (thresholds.page_p75_ms).") % {
            "good": ms(t.page_p75_ms)},
        "pages.poor_share": _("loads > %(poor)s (thresholds.page_poor_ms).") % {
            "poor": ms(t.page_poor_ms)},
        "feedback.csat": _("good ≥ %(good)s, warn ≥ %(warn)s (thresholds.csat).") % {
            "good": pct(t.csat), "warn": pct(t.csat - 0.1)},
        "support.median_resolution_h": _("good ≤ %(sla)s h, warn ≤ %(warn)s h "
                                         "(thresholds.support_sla_hours).") % hours,
        "support.sla_breach_rate": _("good ≤ 10 %%, warn ≤ 20 %%; SLA %(priorities)s, others "
                                     "%(sla)s h.") % hours,
        "support.first_response_sla_breach": _(
            "first answer within %(first)s h (thresholds.support_first_response_hours); "
            "good ≤ 10 %%, warn ≤ 20 %%.") % hours,
        "support.ticket_csat": _("good ≥ %(good)s, warn ≥ %(warn)s (thresholds.csat).") % {
            "good": pct(t.csat), "warn": pct(t.csat - 0.1)},
        "api.budget_remaining_rolling": _(
            "over %(days)d days (thresholds.slo_window_days); good ≥ 25 %%, warn ≥ 0 %%; not "
            "judged when the data covers the window in part.") % {"days": t.slo_window_days},
        "api.burn_rate_rolling": _("over %(days)d days; good ≤ %(good)sx, warn ≤ 1x.") % {
            "days": t.slo_window_days, "good": g(0.75)},
        **_vitals_and_hosts(t),
    }


def _vitals_and_hosts(t: Thresholds) -> dict[str, str]:
    """The bands of the Core Web Vitals and of the hosts' CPU, memory and probes."""
    g, ms, pct = fmt.short, fmt.ms, fmt.pct
    return {
        "pages.lcp_p75_ms": _("good ≤ %(good)s, poor above %(poor)s (web.dev; "
                              "thresholds.lcp_good_ms).") % {
            "good": ms(t.lcp_good_ms), "poor": ms(t.lcp_poor_ms)},
        "pages.inp_p75_ms": _("good ≤ %(good)s, poor above %(poor)s (web.dev; "
                              "thresholds.inp_good_ms).") % {
            "good": ms(t.inp_good_ms), "poor": ms(t.inp_poor_ms)},
        "pages.cls_p75": _("good ≤ %(good)s, poor above %(poor)s (web.dev; "
                           "thresholds.cls_good).") % {"good": g(t.cls_good),
                                                        "poor": g(t.cls_poor)},
        "system.cpu_p95_pct": _("good ≤ %(good)s %%, warn ≤ %(warn)s %% "
                                "(thresholds.cpu_p95_pct).") % {
            "good": g(t.cpu_p95_pct), "warn": g(min(100.0, t.cpu_p95_pct + 10))},
        "system.memory_p95_pct": _("good ≤ %(good)s %%, warn ≤ %(warn)s %% "
                                   "(thresholds.memory_p95_pct).") % {
            "good": g(t.memory_p95_pct), "warn": g(min(100.0, t.memory_p95_pct + 10))},
        "system.uptime": _("good ≥ %(good)s, warn ≥ %(warn)s (thresholds.uptime).") % {
            "good": pct(t.uptime), "warn": pct(t.uptime - (1 - t.uptime))},
    }


PLAIN_UNITS = ("count", "money", "rating")   # a count or sum the label says in full


def entries(kpis: Iterable[Any], thresholds: Thresholds, compact: bool = False
            ) -> list[dict[str, str]]:
    """One row per KPI shown (label, meaning, judged by), in the order given; text KPIs
    (the slowest page, the top issue type) explain themselves and are left out, and on a
    compact page (the executive summary) so are plain counts and sums without a target
    (revenue, new tickets), to keep it short."""
    bands = _bands(thresholds)
    out, seen = [], set()
    for k in kpis:
        if k.key in seen or k.key not in MEANING:
            continue
        if compact and k.key not in bands and (k.unit in PLAIN_UNITS
                                               or fmt.is_currency(k.unit)):
            continue
        seen.add(k.key)
        out.append({"label": _(k.label), "meaning": _(MEANING[k.key]),
                    "judged": bands.get(k.key, "–")})
    return out


def _priorities(t: Thresholds) -> str:
    """'urgent 4, high 8, normal 24, low 72 h' (thresholds.support_sla_hours_by_priority)."""
    pairs = [f"{name} {fmt.short(hours)}" for name, hours in t.support_sla_hours_by_priority]
    return ", ".join(pairs) + " h" if pairs else "–"
