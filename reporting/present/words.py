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
