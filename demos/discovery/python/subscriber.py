"""A discovery listener that does Home Assistant's part, until Ctrl-C.

It subscribes to every config topic with one wildcard filter, and follows the availability and the
state of each entity that a config announces. lib/python/discovery.py says what a message means.
"""
import signal
import sys
from pathlib import Path

# The project's helpers, lib/python/; paho_compat first: without paho-mqtt, it says how to get it.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "lib" / "python"))
from paho_compat import CALLBACK_API, number  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from discovery import Discoveries, listener_flags  # noqa: E402
from problems import cannot_connect, report_problems  # noqa: E402

flags = listener_flags(prefix="homeassistant", topic="homeassistant/#", qos=0)
discovered = Discoveries(flags.prefix, flags.topic)
configs = None  # the message id of the subscription to the configs


def on_connect(client, userdata, connect_flags, rc, properties=None):
    global configs
    print(f"connected to {flags.url}, result code {number(rc)}")
    _, configs = client.subscribe(flags.topic, flags.qos)
    # paho subscribes again after a reconnect only when told: to what it followed before, too.
    for topic in discovered.followed():
        client.subscribe(topic, flags.qos)


def on_subscribe(client, userdata, mid, granted, properties=None):
    if mid == configs:
        print(f"subscribed to {flags.topic} (QoS {number(granted[0])})")


def on_message(client, userdata, message):
    news = discovered.read(message.topic, message.payload.decode(), message.retain)
    for topic in news.unfollow:
        client.unsubscribe(topic)
    for line in news.lines:
        print(line)
    for topic in news.follow:
        client.subscribe(topic, flags.qos)


client = mqtt.Client(*CALLBACK_API, client_id=flags.client_id, clean_session=flags.clean,
                     transport=flags.transport, reconnect_on_failure=True)
client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
# Like Home Assistant it rides out a broker restart, trying again every second.
report_problems(client, flags, reconnect_every=1)
signal.signal(signal.SIGINT, lambda *_: client.disconnect())
try:
    client.connect(flags.host, flags.port, flags.keepalive)
except OSError as error:
    cannot_connect(flags, error)
client.loop_forever()
