"""The simulator's REST side: Kalshi Trade API v2 subset (``api``, FastAPI) with its auth, limits,
paging, formats, models, queries, state snapshots, operator calls (``admin``) and server."""
