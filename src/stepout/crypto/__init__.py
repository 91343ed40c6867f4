"""Stepout's keys: the key file outside the database and what is derived from it."""
