"""A light or a sensor that announces itself for Home Assistant's MQTT discovery, until Ctrl-C.

All it publishes is retained: its availability, its state, then its config on
<prefix>/<component>/<node_id>/<object_id>/config. A light obeys ON and OFF on its command topic.
"""
import json
import signal
import sys
from pathlib import Path

# The project's helpers, lib/python/; paho_compat first: without paho-mqtt, it says how to get it.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "lib" / "python"))
from paho_compat import CALLBACK_API, number  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from discovery import announcement, device_flags  # noqa: E402
from problems import cannot_connect, report_problems  # noqa: E402

flags = device_flags(prefix="homeassistant", base="home", kind="light", node="kitchen")
topics, config = announcement(flags)
state = flags.state


def publish(topic, text, what=None):
    """Retained, so a listener that starts later learns it too; QoS 1. paho sends them in order."""
    options = dict(qos=1, retain=True)
    client.publish(topic, text, **options)
    retained = " (retained)" if options["retain"] else ""
    print(f"published {what or json.dumps(text)} to {topic}{retained}")


def on_connect(client, userdata, connect_flags, rc, properties=None):
    print(f"connected to {flags.url}, result code {number(rc)}")
    publish(topics.availability, "online")
    publish(topics.state, state)
    # The config last: whoever reads it finds the availability and the state already there.
    publish(topics.config, json.dumps(config), "its config")
    if topics.command:
        client.subscribe(topics.command, 1)  # on every connect: paho does not do it again itself


def on_subscribe(client, userdata, mid, granted, properties=None):
    print(f"listening for ON and OFF on {topics.command}")


def on_message(client, userdata, message):
    """Only a light subscribes, so every message is a command for it: it takes ON and OFF."""
    global state
    command = message.payload.decode()
    if command not in ("ON", "OFF"):
        return print(f"ignored {command}")
    state = command
    publish(topics.state, state)


def stop(*_):
    """Ctrl-C: a DISCONNECT cancels the will, so the device says "offline" itself first."""
    if client.is_connected():
        publish(topics.availability, "offline")
    client.disconnect()


client = mqtt.Client(*CALLBACK_API, client_id=flags.client_id, transport=flags.transport,
                     reconnect_on_failure=True)
# The Last Will goes with CONNECT: if the connection drops without a DISCONNECT, the broker
# publishes it.
client.will_set(topics.availability, "offline", qos=1, retain=True)
client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
# Like a real device it rides out a broker restart, trying again every second.
report_problems(client, flags, reconnect_every=1)
signal.signal(signal.SIGINT, stop)
try:
    client.connect(flags.host, flags.port)
except OSError as error:
    cannot_connect(flags, error)
client.loop_forever()
