"""The sensors file: a TOML file that says which badge is whose, which Zigbee sensor is in which
room, what each BLE receiver's room is called in Stepout, and the thresholds of detection.
The format is documented, with an example, in docs/sensors.md.

Errors name the file, the key and what is wrong (`SensorsFileError`), never a value: a device
id is not health data, but a file may hold anything."""

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast, get_args

from stepout.adapters.mqtt.parsing import Topics
from stepout.domain.instants import MICROS_PER_SECOND
from stepout.domain.presence import SensorKind, SensorsConfig, SensorSpec

TOP_KEYS: Final = frozenset({"practice", "thresholds", "mqtt", "devices", "sensors", "receivers"})
THRESHOLD_KEYS: Final = frozenset({"away_timeout_seconds", "max_distance_metres"})
MQTT_KEYS: Final = frozenset({"espresense_topic", "zigbee2mqtt_topic"})
SENSOR_KEYS: Final = frozenset({"room", "kind"})
KINDS: Final[tuple[str, ...]] = get_args(SensorKind)


class SensorsFileError(ValueError):
    """A sensors file that cannot be read or is not valid: `path: key: what is wrong`."""


@dataclass(frozen=True, slots=True)
class SensorsFile:
    config: SensorsConfig
    topics: Topics


def load_sensors_file(path: Path) -> SensorsFile:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise SensorsFileError(f"{path}: {e.strerror or type(e).__name__}") from None
    except UnicodeDecodeError:
        raise SensorsFileError(f"{path}: not UTF-8 text") from None
    return parse_sensors_file(text, str(path))


def parse_sensors_file(text: str, name: str = "sensors file") -> SensorsFile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SensorsFileError(f"{name}: not valid TOML ({e})") from None
    return _Reader(name).read(data)


class _Reader:
    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, key: str, what: str) -> SensorsFileError:
        return SensorsFileError(f"{self.name}: {key}: {what}")

    def read(self, data: dict[str, Any]) -> SensorsFile:
        self._only(data, TOP_KEYS, "")
        practice = self._text(data.get("practice"), "practice")
        thresholds = self._table(data, "thresholds")
        self._only(thresholds, THRESHOLD_KEYS, "thresholds.")
        mqtt = self._table(data, "mqtt")
        self._only(mqtt, MQTT_KEYS, "mqtt.")
        devices = {
            self._key(k, "devices"): self._text(v, f"devices.{_quoted(k)}")
            for k, v in self._table(data, "devices").items()
        }
        receivers = {
            self._key(k, "receivers"): self._text(v, f"receivers.{_quoted(k)}")
            for k, v in self._table(data, "receivers").items()
        }
        sensors = {
            self._key(k, "sensors"): self._sensor(v, f"sensors.{_quoted(k)}")
            for k, v in self._table(data, "sensors").items()
        }
        defaults = SensorsConfig(practice=practice)
        away = thresholds.get("away_timeout_seconds")
        distance = thresholds.get("max_distance_metres")
        config = SensorsConfig(
            practice=practice,
            away_timeout=defaults.away_timeout
            if away is None
            else round(self._positive(away, "thresholds.away_timeout_seconds") * MICROS_PER_SECOND),
            max_distance=defaults.max_distance
            if distance is None
            else self._positive(distance, "thresholds.max_distance_metres"),
            devices=devices,
            sensors=sensors,
            receivers=receivers,
        )
        topics = Topics(
            espresense=self._root(mqtt.get("espresense_topic"), "mqtt.espresense_topic")
            or Topics().espresense,
            zigbee2mqtt=self._root(mqtt.get("zigbee2mqtt_topic"), "mqtt.zigbee2mqtt_topic")
            or Topics().zigbee2mqtt,
        )
        return SensorsFile(config, topics)

    def _only(self, data: Mapping[str, Any], allowed: frozenset[str], prefix: str) -> None:
        for key in data:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(f"{prefix}{_quoted(key)}", f"unknown key (known: {known})")

    def _table(self, data: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "expected a table")
        return cast(dict[str, Any], value)

    def _text(self, value: object, key: str) -> str:
        if value is None:
            raise self.fail(key, "missing")
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "expected non-empty text")
        if value != value.strip():
            raise self.fail(key, "leading or trailing spaces")
        return value

    def _key(self, key: str, table: str) -> str:
        if not key.strip() or key != key.strip():
            raise self.fail(f"{table}.{_quoted(key)}", "a name must be non-empty, without spaces")
        if any(c in key for c in "+#"):
            raise self.fail(f"{table}.{_quoted(key)}", "MQTT wildcards (+, #) are not allowed")
        return key

    def _positive(self, value: object, key: str) -> float:
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise self.fail(key, "expected a positive number")
        return float(value)

    def _root(self, value: object, key: str) -> str | None:
        if value is None:
            return None
        root = self._text(value, key)
        if any(c in root for c in "+#") or root.startswith("/") or root.endswith("/"):
            raise self.fail(key, "expected a topic without wildcards or a slash at either end")
        return root

    def _sensor(self, value: object, key: str) -> SensorSpec:
        if not isinstance(value, dict):
            raise self.fail(key, 'expected a table such as { room = "room-01", kind = "door" }')
        self._only(value, SENSOR_KEYS, f"{key}.")
        room = self._text(value.get("room"), f"{key}.room")
        kind = self._text(value.get("kind"), f"{key}.kind")
        if kind not in KINDS:
            raise self.fail(f"{key}.kind", f"expected one of {', '.join(KINDS)}")
        return SensorSpec(room=room, kind=cast(SensorKind, kind))


def _quoted(key: str) -> str:
    """A TOML key as written in the file: bare when it can be, else quoted."""
    if key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key):
        return key
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def render_sensors_file(config: SensorsConfig, topics: Topics | None = None) -> str:
    """A sensors file for `config` (what `stepout sensors simulate --write-config` writes)."""
    topics = topics or Topics()
    lines = [
        f"practice = {_string(config.practice)}",
        "",
        "[thresholds]",
        f"away_timeout_seconds = {config.away_timeout / MICROS_PER_SECOND:g}",
        f"max_distance_metres = {config.max_distance:g}",
        "",
        "[mqtt]",
        f"espresense_topic = {_string(topics.espresense)}",
        f"zigbee2mqtt_topic = {_string(topics.zigbee2mqtt)}",
        "",
        "# badge or phone id, as ESPresense reports it = therapist id",
        "[devices]",
        *(f"{_quoted(d)} = {_string(t)}" for d, t in config.devices.items()),
        "",
        "# ESPresense room name (the receiver's) = Stepout room id",
        "[receivers]",
        *(f"{_quoted(r)} = {_string(room)}" for r, room in config.receivers.items()),
        "",
        "# Zigbee2MQTT friendly name = its room and kind (door or occupancy)",
        "[sensors]",
        *(
            f"{_quoted(n)} = {{ room = {_string(s.room)}, kind = {_string(s.kind)} }}"
            for n, s in config.sensors.items()
        ),
    ]
    return "\n".join(lines) + "\n"


def _string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
