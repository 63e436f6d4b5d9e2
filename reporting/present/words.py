"""Names the pages show that are written elsewhere as data (the default audiences' titles,
the sections' titles), marked here so that `pybabel extract` puts them in the catalogues;
`html.context` translates them when the page is rendered (a title of the user's own, not
in a catalogue, is shown as written)."""
from __future__ import annotations


def N_(message: str) -> str:
    """Marks `message` for extraction; the translation happens where it is shown."""
    return message


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
