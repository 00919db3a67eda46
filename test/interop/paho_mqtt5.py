#!/usr/bin/env python3
"""paho-mqtt speaking MQTT 5, as a client of our brokers: the MQTT 5 interop tests run it to show that a
Python client sends and sees the properties and options our MQTT 5 demos do. It prints what
demos/mqtt5/ prints, one line per event.

  paho_mqtt5.py URL sub FILTER [--id ID] [--no-clean] [--session-expiry S] [--no-local]
                [--retain-handling N] [--retain-as-published] [--answer TEXT] [--count N]
  paho_mqtt5.py URL pub TOPIC MESSAGE [--retain] [--message-expiry S] [--user-property NAME=VALUE]...
                [--content-type TYPE] [--response-topic TOPIC] [--correlation-data TEXT]

Works with paho-mqtt 1.6 (Debian bookworm's), which speaks MQTT 5 with protocol=MQTTv5, and 2.x.
"""
import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

# The project's helpers, lib/python/; paho_compat first: without paho-mqtt, it says how to get it.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lib" / "python"))
from paho_compat import number, session_present  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from paho.mqtt.subscribeoptions import SubscribeOptions  # noqa: E402

# The names MQTT 5 section 2.4 gives the reason codes these tests meet, as lib/mqtt5-print.ts spells them.
NAMES = {0x00: "success", 0x10: "no matching subscribers", 0x87: "not authorized",
         0x8C: "bad authentication method", 0x9E: "shared subscriptions not supported"}


def fail(message):
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def say(line):
    print(line, flush=True)


def reason(code):
    return f"0x{code:02X} {NAMES.get(code, 'unknown reason code')}"


def properties_text(properties):
    """The properties of a message, as lib/mqtt5-print.ts's messageProperties prints them."""
    if properties is None:
        return ""
    said = []
    if hasattr(properties, "MessageExpiryInterval"):
        said.append(f"expires in {properties.MessageExpiryInterval} s")
    for name, value in getattr(properties, "UserProperty", []):
        said.append(f"user property {name}={value}")
    if hasattr(properties, "ContentType"):
        said.append(f"content type {properties.ContentType}")
    if hasattr(properties, "ResponseTopic"):
        said.append(f"response topic {properties.ResponseTopic}")
    if hasattr(properties, "CorrelationData"):
        said.append(f"correlation data {properties.CorrelationData.decode()}")
    return "".join(f" ({s})" for s in said)


def new_client(client_id):
    if hasattr(mqtt, "CallbackAPIVersion"):
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    return mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("mode", choices=["sub", "pub"])
    parser.add_argument("topic")
    parser.add_argument("message", nargs="?")
    parser.add_argument("--id", default="")
    parser.add_argument("--no-clean", action="store_true")
    parser.add_argument("--session-expiry", type=int)
    parser.add_argument("--no-local", action="store_true")
    parser.add_argument("--retain-handling", type=int, choices=[0, 1, 2], default=0)
    parser.add_argument("--retain-as-published", action="store_true")
    parser.add_argument("--answer")
    parser.add_argument("--count", type=int, default=0, help="exit after this many messages (default: run until stopped)")
    parser.add_argument("--retain", action="store_true")
    parser.add_argument("--message-expiry", type=int)
    parser.add_argument("--user-property", action="append", default=[])
    parser.add_argument("--content-type")
    parser.add_argument("--response-topic")
    parser.add_argument("--correlation-data")
    args = parser.parse_args()
    if args.mode == "pub" and args.message is None:
        fail("pub needs a MESSAGE")

    url = urlparse(args.url)
    if url.scheme not in ("mqtt", "tcp") or not url.hostname:
        fail(f"{args.url} is not a URL like mqtt://127.0.0.1:1883")
    client = new_client(args.id)
    connected = threading.Event()
    received = 0

    def on_connect(client, userdata, flags, rc, properties=None):
        code = number(rc)
        if code >= 0x80:
            fail(f"the broker at {args.url} refused the connection: {reason(code)}")
        session = f", session present: {'yes' if session_present(flags) else 'no'}" if args.mode == "sub" else ""
        say(f"connected to {args.url}, reason code {reason(code)}{session}")
        if args.mode == "sub":
            options = SubscribeOptions(qos=1, noLocal=args.no_local, retainAsPublished=args.retain_as_published,
                                       retainHandling=args.retain_handling)
            client.subscribe(args.topic, options=options)
        connected.set()

    def on_subscribe(client, userdata, mid, granted, properties=None):
        code = number(granted[0])
        if code >= 0x80:
            fail(f"the broker refused the subscription to {args.topic}: {reason(code)}")
        say(f"subscribed to {args.topic} (QoS {code})")

    def on_message(client, userdata, message):
        nonlocal received
        payload = message.payload.decode() if message.payload else "(empty)"
        say(f"{message.topic} {payload}{' (retained)' if message.retain else ''}{properties_text(message.properties)}")
        request = message.properties
        if args.answer is not None and request is not None and hasattr(request, "ResponseTopic"):
            reply = Properties(PacketTypes.PUBLISH)
            if hasattr(request, "CorrelationData"):
                reply.CorrelationData = request.CorrelationData
            client.publish(request.ResponseTopic, args.answer, 1, properties=reply)
            say(f"answered {json.dumps(args.answer)} on {request.ResponseTopic}")
        received += 1
        if args.count and received >= args.count:
            client.disconnect()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    connect_properties = Properties(PacketTypes.CONNECT)
    if args.session_expiry is not None:
        connect_properties.SessionExpiryInterval = args.session_expiry
    try:
        client.connect(url.hostname, url.port or 1883, keepalive=60, clean_start=not args.no_clean,
                       properties=connect_properties)
    except OSError as error:
        fail(f"cannot reach the broker at {args.url} ({error.strerror or error})")

    if args.mode == "sub":
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: client.disconnect())
        client.loop_forever()
        return

    client.loop_start()
    if not connected.wait(10):
        fail(f"no CONNACK from {args.url} within 10 s")
    properties = Properties(PacketTypes.PUBLISH)
    if args.message_expiry is not None:
        properties.MessageExpiryInterval = args.message_expiry
    for pair in args.user_property:
        name, _, value = pair.partition("=")
        properties.UserProperty = (name, value)
    if args.content_type is not None:
        properties.ContentType = args.content_type
    if args.response_topic is not None:
        properties.ResponseTopic = args.response_topic
    if args.correlation_data is not None:
        properties.CorrelationData = args.correlation_data.encode()
    info = client.publish(args.topic, args.message, 1, args.retain, properties=properties)
    info.wait_for_publish()
    say(f"published {json.dumps(args.message, ensure_ascii=False)} to {args.topic}{' (retained)' if args.retain else ''}"
        f"{properties_text(properties)}")
    client.disconnect()
    client.loop_stop()


if __name__ == "__main__":
    main()
