"""Kalshi's facts, pure: session types, ports, limits and refusal texts (``facts``), prices and
quantities (``prices``), RSA-PSS signing of Logons and REST requests (``signing``)."""
