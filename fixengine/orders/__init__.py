"""Orders: requests, the pure book, reports and their FIX wire, settlement reports and the cash they
move (``settlement``), the journal (and its JSON codec), and order entry, which ties them to a session."""
