"""The security subscriber in paho-mqtt: as alice, with a password, over TLS for mqtts://."""
import signal
import sys
from pathlib import Path

# The project's helpers, lib/python/; paho_compat first: without paho-mqtt, it says how to get it.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "lib" / "python"))
from paho_compat import CALLBACK_API, keeps_session, number, session_present  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from options import subscriber_flags  # noqa: E402
from problems import cannot_connect, report_problems  # noqa: E402

# The calls below say what it does; a flag replaces the value in flags.get (--help lists them).
flags = subscriber_flags()
asked = {}


def on_connect(client, userdata, connect_flags, rc, properties=None):
    """Called when the broker answers the CONNECT with a CONNACK; result code 0 means accepted."""
    # A client that keeps its session (clean_session=False) hears whether the broker had one.
    present = "yes" if session_present(connect_flags) else "no"
    kept = f", session present: {present}" if keeps_session(client) else ""
    print(f"connected to {flags.url}, result code {number(rc)}{kept}")
    subscribe = dict(topic=flags.get("topic", "users/alice/#"), qos=flags.get("qos", 0))
    asked[client.subscribe(**subscribe)[1]] = subscribe  # a SUBACK names no filter


def on_subscribe(client, userdata, mid, granted, properties=None):
    """Called on the broker's SUBACK, before a retained message that follows it."""
    print(f"subscribed to {asked.pop(mid)['topic']} (QoS {number(granted[0])})")


def on_message(client, userdata, message):
    """Called for each PUBLISH the broker forwards. RETAIN marks a stored message."""
    text = message.payload.decode() if message.payload else "(empty)"
    print(f"{message.topic} {text}{' (retained)' if message.retain else ''}")


client = mqtt.Client(*CALLBACK_API, transport=flags.transport, reconnect_on_failure=False,
                     client_id=flags.get("id", ""), clean_session=flags.get("clean", True))
# Who we are. The password comes from --password or MQTT_PASSWORD, never from the source.
client.username_pw_set(flags.get("username", "alice"), flags.password)
# Over mqtts://: the CA that signed the broker's certificate, and our own certificate, if any.
if flags.tls:
    client.tls_set(ca_certs=flags.cafile, certfile=flags.cert, keyfile=flags.key)
client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
report_problems(client, flags)
# Ctrl-C: say goodbye with a DISCONNECT, and loop_forever returns.
signal.signal(signal.SIGINT, lambda *_: client.disconnect())
try:
    client.connect(flags.host, flags.port, flags.keepalive)
except OSError as error:
    cannot_connect(flags, error)
client.loop_forever()
