"""A local imitation of Kalshi: its FIX acceptor and REST API over one exchange, with faults.

``Simulator`` (server) owns the rooms: ``exchange/`` (the pure matching engine, the venue that
serialises it, the history REST reads), ``fix/`` (logon gates and policy, the QuickFIX acceptor,
order reports), ``rest/`` (Kalshi Trade API v2 subset), ``faults`` and ``control`` (fault
injection). It imports the product's shared rooms (``fixengine.fix``, ``fixengine.kalshi``,
``fixengine.orders`` vocabulary); the product never imports it."""
