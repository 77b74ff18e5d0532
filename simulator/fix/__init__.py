"""The simulator's FIX side: logon gates (``gate``) and Kalshi's logon checks (``logon``), the
QuickFIX acceptor (``acceptor``), execution reports and request parsing (``order_reports``),
settlement reports (``settlement_reports``, sent with their groups by ``grouped``), and the RT
retention window (``retention``)."""
