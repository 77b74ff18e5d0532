"""The OMS gateway: FIX 4.4 order management systems trading on Kalshi through the engine.

``translate`` is the pure core (OMS FIX 4.4 in, engine requests out; book events in, OMS FIX 4.4
reports out); the sessions, the acceptor and the journal are built around it.
"""
