"""Test-only factories, fakes and waits, one copy each: test modules import these, never each other."""
