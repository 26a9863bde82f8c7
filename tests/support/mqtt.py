"""The local MQTT broker (Mosquitto on 127.0.0.1:1883) and a subscriber that records messages.

Tests needing the broker call :func:`broker_or_skip` first: when nothing answers there they are
skipped, except when ``CI=true``: then they fail (as the PostgreSQL tests do).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

BROKER = ("127.0.0.1", 1883)


def broker_or_skip() -> tuple[str, int]:
    """The broker's (host, port); skips the test (fails it in CI) when the broker is down."""
    try:
        with socket.create_connection(BROKER, timeout=2):
            pass
    except OSError as exc:
        reason = f"no MQTT broker at {BROKER[0]}:{BROKER[1]}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return BROKER


@dataclass(frozen=True)
class MqttMessage:
    topic: str
    payload: bytes


class Subscriber:
    """Context manager: entering connects and returns once the broker confirmed the subscription,
    so nothing published afterwards can be missed."""

    def __init__(self, topic: str, broker: tuple[str, int] = BROKER) -> None:
        self._topic = topic
        self._broker = broker
        self._lock = threading.Lock()
        self._messages: list[MqttMessage] = []
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def __enter__(self) -> Self:
        self._client.connect(*self._broker)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            self._stop()
            raise AssertionError(f"the broker did not confirm the subscription to {self._topic}")
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._stop()

    @property
    def messages(self) -> list[MqttMessage]:
        with self._lock:
            return list(self._messages)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[MqttMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.messages
            if len(messages) >= count:
                return messages
            time.sleep(0.02)
        raise AssertionError(f"expected {count} MQTT messages within {timeout}s, got {len(self.messages)}")

    def _stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if not reason.is_failure:
            client.subscribe(self._topic, qos=1)

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any
    ) -> None:
        if reasons and not reasons[0].is_failure:
            self._subscribed.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._messages.append(MqttMessage(message.topic, bytes(message.payload)))
