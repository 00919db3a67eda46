#!/usr/bin/env python3
"""The article's library, paho-mqtt, as a client of our brokers: the interop tests run it to show that
a Python client sees what our TypeScript demos see. It prints what our demos print, one line per event.

  paho_client.py URL sub FILTER [--qos N] [--id ID] [--no-clean] [--count N]
  paho_client.py URL pub TOPIC MESSAGE [--qos N] [--retain]

Works with paho-mqtt 1.x (Debian bookworm ships 1.6) and 2.x (which asks for a callback API version).
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
from paho_compat import CALLBACK_API, number, session_present  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402


def fail(message):
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def say(line):
    print(line, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("mode", choices=["sub", "pub"])
    parser.add_argument("topic")
    parser.add_argument("message", nargs="?")
    parser.add_argument("--qos", type=int, choices=[0, 1, 2], default=0)
    parser.add_argument("--id", default="")
    parser.add_argument("--no-clean", action="store_true")
    parser.add_argument("--retain", action="store_true")
    parser.add_argument("--count", type=int, default=0, help="exit after this many messages (default: run until stopped)")
    args = parser.parse_args()
    if args.no_clean and not args.id:
        fail("--no-clean needs --id: the broker finds a kept session by its client id")
    if args.mode == "pub" and args.message is None:
        fail("pub needs a MESSAGE")

    url = urlparse(args.url)
    if url.scheme not in ("mqtt", "tcp") or not url.hostname:
        fail(f"{args.url} is not a URL like mqtt://127.0.0.1:1883")
    client = mqtt.Client(*CALLBACK_API, client_id=args.id, clean_session=not args.no_clean)
    connected = threading.Event()
    received = 0

    # Called on CONNACK; paho 2.x adds a properties argument.
    def on_connect(client, userdata, flags, rc, properties=None):
        code = number(rc)
        if code != 0:
            fail(f"the broker at {args.url} refused the connection (return code {code})")
        session = f", session present: {'yes' if session_present(flags) else 'no'}" if args.no_clean else ""
        say(f"connected to {args.url}, result code {code}{session}")
        if args.mode == "sub":
            client.subscribe(args.topic, args.qos)
        connected.set()

    # Called on SUBACK, with the QoS granted for each filter.
    def on_subscribe(client, userdata, mid, granted, properties=None):
        say(f"subscribed to {args.topic} (QoS {number(granted[0])})")

    # Called for each PUBLISH from the broker; the RETAIN flag marks a stored message.
    def on_message(client, userdata, message):
        nonlocal received
        payload = message.payload.decode() if message.payload else "(empty)"
        say(f"{message.topic} {payload}{' (retained)' if message.retain else ''}")
        received += 1
        if args.count and received >= args.count:
            client.disconnect()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    try:
        client.connect(url.hostname, url.port or 1883, keepalive=60)
    except OSError as error:
        fail(f"cannot reach the broker at {args.url} ({error.strerror or error})")

    if args.mode == "sub":
        # Ctrl-C or SIGTERM: disconnect cleanly, as our subscriber does.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: client.disconnect())
        client.loop_forever()
        return

    client.loop_start()
    if not connected.wait(10):
        fail(f"no CONNACK from {args.url} within 10 s")
    info = client.publish(args.topic, args.message, args.qos, args.retain)
    info.wait_for_publish()
    say(f"published {json.dumps(args.message, ensure_ascii=False)} to {args.topic}{' (retained)' if args.retain else ''}")
    client.disconnect()
    client.loop_stop()


if __name__ == "__main__":
    main()
