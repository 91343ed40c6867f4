"""The service layer: commands and queries that edges (CLI, web, MQTT) call."""
