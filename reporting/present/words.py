"""Names the pages show that are written elsewhere as data (the default audiences' titles,
the sections' titles), marked here so that `pybabel extract` puts them in the catalogues;
`html.context` translates them when the page is rendered (a title of the user's own, not
in a catalogue, is shown as written)."""
from __future__ import annotations

from ..core.i18n import N_


AUDIENCE_TITLES = (N_("Executive summary"), N_("UX weekly"), N_("IT & operations weekly"),
                   N_("Support weekly"))
SECTION_TITLES = (N_("Trends"), N_("Cart abandonment"), N_("Orders and revenue"),
                  N_("Clickstream"), N_("Sessions and funnel"), N_("User feedback"),
                  N_("Incidents across the stack"), N_("System metrics"),
                  N_("Support tickets"), N_("API reliability and latency"),
                  N_("Page speed"), N_("Headline KPIs"), N_("What stands out"),
                  N_("Appendix: data quality"))
# the charts' own words: titles written as data in `compute` (extracted there as Chart's
# third argument), their weekly forms, axis names and legends given as chart options
CHART_WORDS = (N_("Abandoned cart value per week"), N_("Revenue per week"),
               N_("New tickets per week by channel (tickets)"), N_("hour of day"),
               N_("clicks"), N_("tickets"), N_("requests / hour"), N_("5xx rate (%)"),
               N_("rating (stars)"), N_("responses"), N_("CPU p95"), N_("memory p95"),
               N_("hours"), N_("positive"), N_("neutral"), N_("negative"),
               N_("API errors, abandoned carts and negative feedback per hour"),
               N_("API errors, abandoned carts and negative feedback per day"),
               N_("abandoned value"), N_("negative comments"), N_("target"),
               N_("CPU target"), N_("memory target"))
# tables' column headings (named from their columns where no section names them)
TABLE_HEADINGS = (N_("5xx rate"), N_("Abandoned at"), N_("Avg rating"), N_("Band"),
                  N_("Breach rate"), N_("Cart"), N_("Carts"), N_("Chance"), N_("Channel"),
                  N_("Class"), N_("Comment"), N_("Day"), N_("Device"), N_("Element"),
                  N_("Endpoint"), N_("Errors"), N_("Failed probes"), N_("Issue type"),
                  N_("Items"), N_("Mean"), N_("Median"), N_("Mentions"), N_("Negative"),
                  N_("Over target"), N_("Page"), N_("Peak"), N_("Polarity"), N_("Priority"),
                  N_("Resolved"), N_("Rollout"), N_("Samples"), N_("Service"),
                  N_("Services"), N_("Share"), N_("Share of 4xx"), N_("Share of 5xx"),
                  N_("Share of class"), N_("Signal"), N_("Stars"), N_("Step"),
                  N_("Step conversion"), N_("Target"), N_("Theme"), N_("Tickets"),
                  N_("Uptime"), N_("User"), N_("Users"), N_("Usual"), N_("Value"),
                  N_("Version"), N_("Views"), N_("When"), N_("Window"))
# tables' titles, written as data in `compute`
TABLE_TITLES = (N_("Back-end anomalies users did not visibly feel"),
                N_("Biggest abandoned carts"), N_("Busiest endpoints"),
                N_("Slowest endpoints (by p95)"), N_("By channel"), N_("By day"),
                N_("By device"), N_("By issue type"), N_("By page (slowest p75 first)"),
                N_("By service"), N_("Clicks by page"),
                N_("Core Web Vitals by page (p75, worst LCP first)"), N_("Deploys"),
                N_("Errors by endpoint (most 5xx first)"), N_("Errors by status code"),
                N_("Feedback themes"), N_("Incidents, most costly first"), N_("Level shifts"),
                N_("Most clicked elements"), N_("Most negative comments"),
                N_("Planned maintenance (not judged)"), N_("Resolution SLA by priority"),
                N_("Text and stars disagree"), N_("Top drop-off pages"),
                N_("What each incident's signals did"),
                N_("What users felt without a back-end cause"))
# The domains that label each finding ("HIGH · API"), shown upper-case.
DOMAINS = (N_("incidents"), N_("api"), N_("pages"), N_("feedback"), N_("cart"), N_("orders"),
           N_("sessions"), N_("clicks"), N_("support"), N_("system"))
