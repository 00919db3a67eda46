"""A discovery listener that plays Home Assistant's part, until Ctrl-C.

It connects with MQTT 5, subscribes to every config topic with one wildcard filter, says "online" on
Home Assistant's status topic, and follows the availability and the state of each entity that a
config announces. lib/python/discovery.py says what a message means.
"""
import signal
import sys
from pathlib import Path

# The project's helpers, lib/python/; paho_compat first: without paho-mqtt, it says how to get it.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "lib" / "python"))
from paho_compat import CALLBACK_API, disconnect_with_will, number, session_present  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from discovery import Discoveries, listener_flags, status_topic  # noqa: E402
from problems import cannot_connect, report_problems  # noqa: E402

# The calls below say what it does; a flag replaces the value in flags.get (--help lists them).
flags = listener_flags()
discovered = None  # what it discovered, once the broker has granted the filter of the configs
status = status_topic(flags.prefix)
asked = {}  # the subscription to the configs, by message id: a SUBACK names no filter


def on_connect(client, userdata, connect_flags, rc, properties=None):
    present = "yes" if session_present(connect_flags) else "no"
    kept = "" if flags.clean else f", session present: {present}"
    print(f"connected to {flags.url}, result code {number(rc)}{kept}")
    subscribe = dict(topic=flags.get("topic", "homeassistant/#"), qos=flags.get("qos", 0))
    asked[client.subscribe(**subscribe)[1]] = subscribe
    # paho subscribes again after a reconnect only when told: to what it followed before, too.
    for topic in discovered.followed() if discovered else []:
        client.subscribe(topic, flags.get("qos", 0))


def on_subscribe(client, userdata, mid, granted, properties=None):
    """The configs are subscribed: now the birth, so that the devices that answer it are heard."""
    global discovered
    if mid in asked:
        topic = asked.pop(mid)["topic"]
        print(f"subscribed to {topic} (QoS {number(granted[0])})")
        discovered = discovered or Discoveries(flags.prefix, topic)
        client.publish(status, "online", qos=0, retain=False)
        print(f'published "online" to {status}, the birth message')


def on_message(client, userdata, message):
    news = discovered.read(message.topic, message.payload.decode(), message.retain)
    for topic in news.unfollow:
        client.unsubscribe(topic)
    for line in news.lines:
        print(line)
    for topic in news.follow:
        client.subscribe(topic, flags.get("qos", 0))


client = mqtt.Client(*CALLBACK_API, client_id=flags.client_id, protocol=mqtt.MQTTv5,
                     transport=flags.transport, reconnect_on_failure=True)
# Home Assistant's will: "offline" on its status topic, which the broker publishes when it is gone.
client.will_set(status, "offline", qos=0, retain=False)
client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
# Like Home Assistant it rides out a broker restart, trying again every second.
report_problems(client, flags, reconnect_every=1)
# Ctrl-C: an MQTT 5 DISCONNECT with reason code 4, after which the broker still publishes the will.
signal.signal(signal.SIGINT, lambda *_: client.disconnect(reasoncode=disconnect_with_will()))
try:
    client.connect(flags.host, flags.port, flags.keepalive, clean_start=flags.clean,
                   properties=flags.properties)
except OSError as error:
    cannot_connect(flags, error)
client.loop_forever()
