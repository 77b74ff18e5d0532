"""Reconciliation against Kalshi's REST API: the pure comparison of book and snapshot
(``compare``), the runner that fetches, heals and journals (``runner``), its report (``report``)."""
