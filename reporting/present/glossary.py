"""What each KPI counts and how it is judged, for the glossary that ends every PDF."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..core import formatting as fmt
from ..core.config import Thresholds

# key -> what is counted, in words a manager reads
MEANING = {
    "api.requests": "API calls logged in the period.",
    "api.server_errors": "API calls answered with a 5xx status (the server failed).",
    "api.server_error_rate": "Share of API calls answered with a 5xx status.",
    "api.client_error_rate": "Share of API calls answered with a 4xx status (a bad request).",
    "api.availability": "Share of API calls without a server error (1 − 5xx rate).",
    "api.p50_ms": "Half of the API calls were answered faster than this.",
    "api.p95_ms": "95 % of the API calls were answered faster than this.",
    "api.p99_ms": "99 % of the API calls were answered faster than this.",
    "api.mean_ms": "Average API response time.",
    "api.error_budget_used": "Server errors as a share of the errors the availability target "
                             "allows over the period.",
    "api.max_burn_rate": "The worst hour's 5xx rate divided by the rate the target allows; "
                         "1x spends the budget exactly over the period.",
    "api.apdex": "Satisfied calls (≤ T) plus half the tolerating ones (≤ 4T), over all calls; "
                 "server errors count as frustrated.",
    "api.budget_remaining_rolling": "Share of the error budget left over the rolling window "
                                    "that ends with the period: 1 − server errors / errors "
                                    "the availability target allows; below 0 it is overspent.",
    "api.burn_rate_rolling": "The rolling window's 5xx rate divided by the rate the target "
                             "allows; 1x spends the window's budget exactly.",
    "pages.lcp_p75_ms": "Largest Contentful Paint: 75 % of the page loads that report it "
                        "showed their main content faster than this (Core Web Vital).",
    "pages.inp_p75_ms": "Interaction to Next Paint: 75 % of the page loads that report it "
                        "answered their slowest interaction faster than this (Core Web Vital).",
    "pages.cls_p75": "Cumulative Layout Shift: 75 % of the page loads that report it moved "
                     "their layout less than this (Core Web Vital, no unit).",
    "pages.views": "Page loads measured.",
    "pages.p75_load_ms": "75 % of page loads finished faster than this.",
    "pages.mean_load_ms": "Average page load time.",
    "pages.p50_load_ms": "Half of the page loads finished faster than this.",
    "pages.p95_load_ms": "95 % of the page loads finished faster than this.",
    "pages.good_share": "Share of page loads within the good band.",
    "pages.poor_share": "Share of page loads in the poor band.",
    "clicks.total": "Clicks recorded.",
    "clicks.unique_users": "Different users who clicked.",
    "clicks.clicks_per_user": "Clicks divided by the users who clicked.",
    "cart.abandoned_carts": "Carts left without buying.",
    "cart.abandoned_value": "Total value of the carts left without buying.",
    "cart.avg_value": "Average value of an abandoned cart.",
    "cart.avg_items": "Average number of items in an abandoned cart.",
    "cart.abandoned_share": "Abandoned cart value as a share of abandoned value plus revenue "
                            "(the orders' value).",
    "orders.revenue": "Value of the orders placed in the period.",
    "orders.orders": "Orders placed in the period.",
    "orders.conversion_rate": "Orders / sessions started in the period.",
    "orders.avg_order_value": "Revenue divided by orders.",
    "sessions.count": "Visits (sessions) that started in the period.",
    "sessions.avg_duration_min": "Average time from a session's start to its end.",
    "sessions.median_duration_min": "Half of the sessions were shorter than this.",
    "sessions.bounce_rate": "Share of sessions that saw one page only.",
    "sessions.completion_rate": "Share of sessions that finished (bought), drop-off page 'none'.",
    "sessions.pages_per_session": "Average number of pages a session saw.",
    "sessions.checkout_conversion": "Of the sessions that reached the cart, the share that "
                                    "finished.",
    "feedback.responses": "Feedback answers received.",
    "feedback.avg_rating": "Average star rating (1-5).",
    "feedback.csat": "Share of the feedback form's ratings with 4 or 5 stars (not the "
                     "tickets' CSAT).",
    "feedback.positive_share": "Share of comments whose wording reads positive (TextBlob).",
    "feedback.negative_share": "Share of comments whose wording reads negative (TextBlob).",
    "feedback.mismatch_rate": "Among comments with opinion words, the share whose wording "
                              "contradicts the stars.",
    "support.tickets": "Tickets opened in the period.",
    "support.open_backlog": "Tickets still open at the end of the period.",
    "support.backlog_median_age_h": "Half of the tickets open at the end of the period had "
                                    "been open for less than this.",
    "support.net_flow": "Tickets opened minus tickets resolved; above 0 the backlog grows.",
    "support.median_first_response_h": "Half of the tickets got a first answer faster than this.",
    "support.median_resolution_h": "Half of the resolved tickets were resolved faster than this.",
    "support.p90_resolution_h": "90 % of the resolved tickets were resolved faster than this.",
    "support.sla_breach_rate": "Share of resolved tickets that took longer than their "
                               "priority's SLA.",
    "support.first_response_sla_breach": "Share of the new tickets answered later than the "
                                         "first-response target (one still unanswered counts "
                                         "once it has waited that long).",
    "support.ticket_csat": "Of the rated tickets opened in the period, the share rated 4 "
                           "or 5 (the tickets' csat, not the feedback form's).",
    "support.rated_tickets": "Tickets opened in the period that carry a CSAT rating.",
    "system.cpu_p95_pct": "95 % of the CPU samples were below this.",
    "system.memory_p95_pct": "95 % of the memory samples were below this.",
    "system.uptime": "Share of health probes that found the service healthy.",
}


def _bands(t: Thresholds) -> dict[str, str]:
    """key -> how the status is judged and where the target comes from (config values)."""
    budget = 1 - t.availability_slo
    pct: Callable[[float], str] = fmt.pct
    return {
        "api.server_error_rate": f"good ≤ {pct(budget)}, warn ≤ {pct(2 * budget)}: the "
                                 f"{pct(t.availability_slo)} availability target "
                                 "(thresholds.availability_slo).",
        "api.availability": f"good ≥ {pct(t.availability_slo)} (thresholds.availability_slo), "
                            f"warn ≥ {pct(1 - 2 * budget)}.",
        "api.p95_ms": f"good ≤ {fmt.ms(t.api_p95_ms)}, warn ≤ {fmt.ms(1.25 * t.api_p95_ms)} "
                      "(thresholds.api_p95_ms).",
        "api.error_budget_used": "good ≤ 75 %, warn ≤ 100 %.",
        "api.max_burn_rate": f"good ≤ 1x, warn ≤ {t.burn_rate_page:g}x, the rate at which "
                             "Google's SRE workbook pages someone over one hour.",
        "api.apdex": f"good ≥ 0.85, warn ≥ 0.70 (T = {fmt.ms(t.apdex_t_ms)}, "
                     "thresholds.apdex_t_ms).",
        "pages.p75_load_ms": f"good ≤ {fmt.ms(t.page_p75_ms)}, poor above "
                             f"{fmt.ms(t.page_poor_ms)}: web.dev's LCP bands, borrowed "
                             "(load time is not LCP).",
        "pages.good_share": f"loads ≤ {fmt.ms(t.page_p75_ms)} (thresholds.page_p75_ms).",
        "pages.poor_share": f"loads > {fmt.ms(t.page_poor_ms)} (thresholds.page_poor_ms).",
        "feedback.csat": f"good ≥ {pct(t.csat)}, warn ≥ {pct(t.csat - 0.1)} "
                         "(thresholds.csat).",
        "support.median_resolution_h": f"good ≤ {t.support_sla_hours:g} h, warn ≤ "
                                       f"{1.25 * t.support_sla_hours:g} h "
                                       "(thresholds.support_sla_hours).",
        "support.sla_breach_rate": f"good ≤ 10 %, warn ≤ 20 %; SLA {_priorities(t)}, "
                                   f"others {t.support_sla_hours:g} h.",
        "support.first_response_sla_breach": f"first answer within "
                                             f"{t.support_first_response_hours:g} h "
                                             "(thresholds.support_first_response_hours); "
                                             "good ≤ 10 %, warn ≤ 20 %.",
        "support.ticket_csat": f"good ≥ {pct(t.csat)}, warn ≥ {pct(t.csat - 0.1)} "
                               "(thresholds.csat).",
        "api.budget_remaining_rolling": f"over {t.slo_window_days} days "
                                        "(thresholds.slo_window_days); good ≥ 25 %, warn ≥ "
                                        "0 %; not judged when the data covers the window "
                                        "in part.",
        "api.burn_rate_rolling": f"over {t.slo_window_days} days; good ≤ 0.75x, warn ≤ 1x.",
        "pages.lcp_p75_ms": f"good ≤ {fmt.ms(t.lcp_good_ms)}, poor above "
                            f"{fmt.ms(t.lcp_poor_ms)} (web.dev; thresholds.lcp_good_ms).",
        "pages.inp_p75_ms": f"good ≤ {fmt.ms(t.inp_good_ms)}, poor above "
                            f"{fmt.ms(t.inp_poor_ms)} (web.dev; thresholds.inp_good_ms).",
        "pages.cls_p75": f"good ≤ {t.cls_good:g}, poor above {t.cls_poor:g} (web.dev; "
                         "thresholds.cls_good).",
        "system.cpu_p95_pct": f"good ≤ {t.cpu_p95_pct:g} %, warn ≤ "
                              f"{min(100.0, t.cpu_p95_pct + 10):g} % (thresholds.cpu_p95_pct).",
        "system.memory_p95_pct": f"good ≤ {t.memory_p95_pct:g} %, warn ≤ "
                                 f"{min(100.0, t.memory_p95_pct + 10):g} % "
                                 "(thresholds.memory_p95_pct).",
        "system.uptime": f"good ≥ {pct(t.uptime)}, warn ≥ {pct(t.uptime - (1 - t.uptime))} "
                         "(thresholds.uptime).",
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
        out.append({"label": k.label, "meaning": MEANING[k.key],
                    "judged": bands.get(k.key, "–")})
    return out


def _priorities(t: Thresholds) -> str:
    """'urgent 4, high 8, normal 24, low 72 h' (thresholds.support_sla_hours_by_priority)."""
    pairs = [f"{name} {hours:g}" for name, hours in t.support_sla_hours_by_priority]
    return ", ".join(pairs) + " h" if pairs else "–"
