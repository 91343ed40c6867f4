"""Adapters: the edges of the core (storage today; FHIR, MQTT and reports to come)."""
