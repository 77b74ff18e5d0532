"""The simulator's FIX side: logon gates (``gate``) and Kalshi's logon checks (``logon``), the
QuickFIX acceptor (``acceptor``), execution reports and request parsing (``order_reports``), and
the RT retention window (``retention``)."""
