"""What the copilot knows: the incident store (sqlmodel tables and service functions).

Modules are named after what they own: `orgs`, `alerts`, `incidents`, `timeline`, `hypotheses`,
`threads`, `inbox`, `outbox`; `correlation` turns alert and paging signals into incidents; `db`
owns engines and sessions. Nothing here imports `skills` or `bot`.
"""
