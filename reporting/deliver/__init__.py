"""Reports to people: mail (compose, SMTP, delivery claims) and chat channels.
Imports `core`, `store` and `present`."""
