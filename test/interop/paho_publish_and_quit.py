#!/usr/bin/env python3
"""A publisher that behaves as the article's does: it connects, publishes one message, and the script
ends there, with no network loop and no DISCONNECT. So the broker gets CONNECT, PUBLISH and the end of
the connection almost at once. The tests run it many times and count what a subscriber receives (A1).

  paho_publish_and_quit.py HOST PORT TOPIC MESSAGE [--qos N] [--retain]

Works with paho-mqtt 1.x (Debian bookworm ships 1.6) and 2.x (which asks for a callback API version).
"""
import argparse

import paho.mqtt.client as mqtt

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("host")
parser.add_argument("port", type=int)
parser.add_argument("topic")
parser.add_argument("message")
parser.add_argument("--qos", type=int, choices=[0, 1], default=0)
parser.add_argument("--retain", action="store_true")
args = parser.parse_args()

if hasattr(mqtt, "CallbackAPIVersion"):
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
else:
    publisher = mqtt.Client()
# connect() sends CONNECT and returns without waiting for the CONNACK; publish() writes the PUBLISH at
# once. Nothing reads the broker's answers, and nothing says goodbye: the process just exits.
publisher.connect(args.host, args.port)
publisher.publish(args.topic, args.message, args.qos, args.retain)
