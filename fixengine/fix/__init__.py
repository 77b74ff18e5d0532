"""FIX itself, with no Kalshi rules: tag and MsgType constants, framing, timestamps' wire form,
dialects, dictionaries, message logs, and the QuickFIX glue both roles run on (``quickfix.py``).

The ground floor: it imports nothing else of fixengine but ``errors``."""
