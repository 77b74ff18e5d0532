"""Conformance: runs named Kalshi scenarios against any FIX client (the runner arrives later); harness.py is its base."""
