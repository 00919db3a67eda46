"""The security publisher in paho-mqtt: as alice, with a password, over TLS for mqtts://."""
import json
import sys
from pathlib import Path

# The project's helpers, lib/python/; paho_compat first: without paho-mqtt, it says how to get it.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "lib" / "python"))
from paho_compat import CALLBACK_API, number  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from options import publisher_flags  # noqa: E402
from problems import cannot_connect, report_problems  # noqa: E402

# The calls below say what it does; a flag replaces the value in flags.get (--help lists them).
flags = publisher_flags()
sent = {}


def on_connect(client, userdata, connect_flags, rc, properties=None):
    """Called when the broker answers the CONNECT with a CONNACK; result code 0 means accepted."""
    print(f"connected to {flags.url}, result code {number(rc)}")
    for message in flags.get("messages", ["on"]):
        # paho names no topic when a message has gone: keep what was asked, by message id.
        publish = dict(topic=flags.get("topic", "users/alice/notes"), payload=message,
                       qos=flags.get("qos", 1), retain=flags.get("retain", False))
        sent[client.publish(**publish).mid] = publish


def on_publish(client, userdata, mid, *_):
    """Called once a message has left (QoS 0), or the broker has acknowledged it (QoS 1, 2)."""
    publish = sent.pop(mid)
    text = json.dumps(publish["payload"], ensure_ascii=False)
    print(f"published {text} to {publish['topic']}{' (retained)' if publish['retain'] else ''}")
    if not sent:
        client.disconnect()  # DISCONNECT: the broker knows we left on purpose


client = mqtt.Client(*CALLBACK_API, transport=flags.transport, reconnect_on_failure=False,
                     client_id=flags.get("id", ""), clean_session=flags.get("clean", True))
# Who we are. The password comes from --password or MQTT_PASSWORD, never from the source.
client.username_pw_set(flags.get("username", "alice"), flags.password)
# Over mqtts://: the CA that signed the broker's certificate, and our own certificate, if any.
if flags.tls:
    client.tls_set(ca_certs=flags.cafile, certfile=flags.cert, keyfile=flags.key)
client.on_connect, client.on_publish = on_connect, on_publish
report_problems(client, flags)
try:
    client.connect(flags.host, flags.port, flags.keepalive)
except OSError as error:
    cannot_connect(flags, error)
client.loop_forever()
