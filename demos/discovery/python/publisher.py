"""A device that announces itself for Home Assistant's MQTT discovery, until Ctrl-C.

A light and a thermometer in one retained config on <prefix>/device/<node>/config, or with
--per-component one config each on <prefix>/<platform>/<node>/<component>/config (the article's
form). The light obeys the payloads its config names; when Home Assistant starts again, it announces
itself again.
"""
import json
import random
import signal
import sys
import threading
from pathlib import Path

# The project's helpers, lib/python/; paho_compat first: without paho-mqtt, it says how to get it.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "lib" / "python"))
from paho_compat import CALLBACK_API, number  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from discovery import announcement, device_flags  # noqa: E402
from problems import cannot_connect, report_problems  # noqa: E402

flags = device_flags()
device = announcement(flags)
light = device.light
announcing = threading.Event()


def publish(topic, text, what=None):
    """Retained, so a listener that starts later learns it too; QoS 1. paho sends them in order."""
    client.publish(topic, text, qos=1, retain=True)
    print(f"published {what or json.dumps(text, ensure_ascii=False)} to {topic} (retained)")


def on_connect(client, userdata, connect_flags, rc, properties=None):
    print(f"connected to {flags.url}, result code {number(rc)}")
    publish(device.availability, "online")
    for topic, state in device.states.items():
        publish(topic, state)
    for topic, payload, what in device.removal:  # a component it no longer has, removed once
        publish(topic, payload, what)
    device.removal.clear()
    for topic, config in device.configs.items():  # the configs last
        publish(topic, config, "its config")
    client.subscribe([(t, 1) for t in ([light.command_topic] if light else []) + [device.status]])


def on_subscribe(client, userdata, mid, granted, properties=None):
    if light:
        print(f"listening for {light.on} and {light.off} on {light.command_topic}")
    print(f"listening for Home Assistant on {device.status}")


def on_message(client, userdata, message):
    text = message.payload.decode()
    if message.topic == device.status:
        return home_assistant(text)
    if text not in (light.on, light.off):  # a command for the light: the payloads its config names
        return print(f"ignored {text}")
    device.states[light.state_topic] = text
    publish(light.state_topic, text)


def home_assistant(text):
    """Home Assistant's birth: announce again after a short random delay, configs then states."""
    if text == "offline":
        print(f"Home Assistant is offline ({device.status})")
    if text != "online" or announcing.is_set():
        return
    announcing.set()

    def announce():
        again = [*device.configs.items(), (device.availability, "online"), *device.states.items()]
        for topic, payload in again:
            client.publish(topic, payload, qos=1, retain=True)
        announcing.clear()
        print(f"Home Assistant is online ({device.status}): announced again")
    threading.Timer(random.random() * 0.5, announce).start()


def stop(*_):
    """Ctrl-C: a DISCONNECT cancels the will, so the device says "offline" itself first."""
    if client.is_connected():
        publish(device.availability, "offline")
    client.disconnect()


client = mqtt.Client(*CALLBACK_API, client_id=flags.client_id, transport=flags.transport,
                     reconnect_on_failure=True)
# The Last Will goes with CONNECT: the broker sends it if the connection drops without DISCONNECT.
client.will_set(device.availability, "offline", qos=1, retain=True)
client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
# Like a real device it rides out a broker restart, trying again every second.
report_problems(client, flags, reconnect_every=1)
signal.signal(signal.SIGINT, stop)
try:
    client.connect(flags.host, flags.port)
except OSError as error:
    cannot_connect(flags, error)
client.loop_forever()
