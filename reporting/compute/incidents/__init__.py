"""Cross-signal incidents: when things went wrong across the stack, and what it cost.

Every source gives hourly signals, and every hour of the period is judged by how likely
its value is under that hour's baseline: the same hour of the week over up to 4
preceding weeks in the data or, where the data does not reach back, in the archive (the
same hour of day over up to 28 preceding days when there are fewer than 2 such weeks;
no judgement with fewer than 3 days). Baseline hours of counts, ratios and money that
are themselves unlikely under the others (an earlier incident) are left out.

- **Tail probabilities.** Counts (tickets, abandoned carts, negative comments, failed
  probes) get the exact upper tail of a Poisson whose rate is learnt from those baseline
  hours (a gamma prior from the same hour of day: the predictive is negative binomial);
  error ratios the exact upper tail of a binomial with the hour's request count, the
  rate learnt the same way (beta-binomial). Percentiles, CPU and memory (per host),
  traffic and the mean rating use a robust scale: z = 0.6745 (x - median) / MAD, MAD
  floored by the signal's own sampling noise, read as a normal tail on the side that
  means trouble (`signals.SIDES`: both for requests, CPU and memory; a fall for the
  rating; else a rise); a percentile also by the binomial count of
  the hour's events above its usual level (alone in hours with few events). Ratios are
  judged at any request count (the tail knows how many events there were).
- **Service map.** Each back-end service is tied to the pages, ticket issue types,
  feedback words and (for checkout) abandoned carts its users see: `[service_map]` in
  the config, or inferred from the names of the service, its endpoints, pages and issue
  types (see FAMILIES). A user signal pairs only with the services it is tied to.
- **Incidents.** Per service and hour, each side's evidence is its smallest tail
  probability times the number of its signals judged that hour (Bonferroni within the
  side); the two sides are combined by Fisher's method (q = p_back * p_user, P = q (1 -
  ln q)). An hour is an incident hour when P <= alpha / (hours x services) and each side
  on its own is below SUGGESTIVE; the window is the run of hours around it in which the
  back-end side stays below SUGGESTIVE. So the chance that a quiet period shows a false incident
  is at most alpha (`thresholds.incident_false_alarms`, 0.01), whatever the dependence
  between hours and services.
- **One-sided anomalies.** A back-end signal below alpha / (hours x back-end signals)
  outside an incident is a back-end anomaly (IT report); a user signal below alpha /
  (hours x user signals) outside an incident that holds it is a user-felt anomaly
  (support report). Each family holds the same alpha bound.
- **Level shifts.** A percentile or CPU/memory signal that stays above (CPU/memory: or
  below) its baseline for the rest of the period (at least SHIFT_HOURS) is one level
  shift with its start (CUSUM estimate, judged against the hours before it; sign test at
  alpha / (signals x candidate starts)); the hours after it are
  judged against the shifted level, so a later failure still shows.

Signals of the high-volume sources come from their rollups (`reporting/rollups.py`), never
from rows: requests, 5xx rates, sessions dropped at checkout, CPU and memory means (sums /
samples) and failed probes exactly; an hour's p95 latency per service and p75 load time
per page from that hour's histogram of 0.5 % logarithmic buckets (`latency_hourly`,
`load_time_hourly`), so within 0.5 % of the percentile of the raw values, and the count of
the hour's events above its usual level is counted over the same buckets. Hours are cut
in UTC (a slot of 15 minutes in a zone with a half-hour offset is a quarter of one).
"""
