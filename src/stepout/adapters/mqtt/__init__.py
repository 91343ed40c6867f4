"""Presence sensors over MQTT: topic and payload parsing (`parsing`), the sensors file
(`sensors_file`), the consumer that feeds a `PresenceSink` (`consumer`) and the demo's
simulated devices (`simulator`). See docs/sensors.md."""
