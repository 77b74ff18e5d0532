"""Orders: requests, the pure book, reports and their FIX wire, the journal (and its JSON codec),
and order entry, which ties them to a session."""
