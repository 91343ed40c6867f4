"""Stepout: the record, protocol and audit of the moments a therapist leaves the session."""

__version__ = "0.1.0"
