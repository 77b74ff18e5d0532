"""A local imitation of Kalshi's FIX acceptor, for tests and conformance runs."""
