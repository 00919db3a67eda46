"""The flags of the Python demos, named as those of the TypeScript ones (lib/demo-flags.ts), over the
defaults that each demo writes down, and checked before anything reaches the broker. MQTT_URL sets the
default --url. When something is wrong: one line on stderr and exit code 1, never a traceback.
"""
import argparse
import json
import os
import sys
import threading
from types import SimpleNamespace
from urllib.parse import urlparse

from topics import empty_level_note, topic_filter_problem, topic_name_problem

DEFAULT_URL = "mqtt://127.0.0.1:1883"


def fail(message):
    """Print `error: <message>` and exit 1."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def start_program():
    """What every Python demo does first: print line by line, and under the stage hold its lifeline."""
    # A pipe (the stage, a test) would otherwise get the output in blocks, long after the events.
    sys.stdout.reconfigure(line_buffering=True)
    if os.environ.get("MQTT_BY_EXAMPLE_LIFELINE") == "1":
        # The stage's end of the stdin pipe closes when the stage ends, however it ends (lib/cli.ts).
        def watch():
            # os.read, not sys.stdin: a daemon thread must hold no lock of the io module at exit.
            while os.read(0, 4096):
                pass
            os._exit(1)
        threading.Thread(target=watch, daemon=True).start()


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # `--topic #` unquoted: the shell took # for a comment and dropped it, and all that followed.
        quoting = "; to pass # or a filter that starts with it, quote it: '#'" if message.startswith("argument --topic:") else ""
        fail(f"{message}{quoting}; see --help")


def _parser():
    main = sys.modules["__main__"]
    description = (main.__doc__ or "").strip().splitlines()[0] if main.__doc__ else None
    return _Parser(prog=f"python3 {os.path.relpath(sys.argv[0])}", description=description)


def _client_flags(parser, client_id, clean, qos):
    parser.add_argument("--url", help=f"broker to connect to (default $MQTT_URL, else {DEFAULT_URL})")
    parser.add_argument("--qos", help=f"quality of service: 0, 1 or 2 (default {qos})")
    parser.add_argument("--id", help=f"client identifier (default{f' {client_id}' if client_id else ': a random one'})")
    parser.add_argument("--no-clean", action="store_true", help="keep the session on the broker after disconnecting (needs --id)"
                        + ("" if clean else "; the default here"))
    parser.add_argument("--clean", action="store_true", help="start with a clean session, which ends when the client disconnects"
                        + ("; the default here" if clean else ""))
    parser.add_argument("--keepalive", help="ping the broker after this many seconds without a packet to send (default 60)")


def _client_options(args, client_id, clean, qos):
    url = args.url or os.environ.get("MQTT_URL") or DEFAULT_URL
    parsed = urlparse(url)
    if parsed.scheme == "udp":
        fail(f"cannot connect to {url}: MQTT needs a two-way byte stream such as TCP, not UDP datagrams "
             "(MQTT 3.1.1 §4.2); over UDP devices speak MQTT-SN, a protocol of its own")
    if parsed.scheme not in ("mqtt", "tcp", "ws") or not parsed.hostname:
        fail(f"cannot connect to {url}: the Python demos take mqtt:// or ws:// URLs, as in {DEFAULT_URL}")
    qos_text = args.qos if args.qos is not None else str(qos)
    if qos_text not in ("0", "1", "2"):
        fail(f"--qos must be 0, 1 or 2, not {json.dumps(args.qos)}")
    if args.id == "":
        fail("--id must not be empty; leave it out to get a random client id")
    if args.clean and args.no_clean:
        fail("--clean and --no-clean contradict each other; give one of them")
    client_id = args.id if args.id is not None else client_id
    clean = True if args.clean else False if args.no_clean else clean
    if not clean and not client_id:
        fail("--no-clean needs --id: the broker finds a kept session by its client id")
    keepalive = 60 if args.keepalive is None else args.keepalive
    if not str(keepalive).isdigit() or int(keepalive) > 65535:
        fail(f"--keepalive must be a number of seconds from 0 to 65535, not {json.dumps(args.keepalive)}")
    websocket = parsed.scheme == "ws"
    return dict(url=url, host=parsed.hostname, port=parsed.port or (80 if websocket else 1883),
                transport="websockets" if websocket else "tcp", client_id=client_id or "", clean=clean,
                qos=int(qos_text), keepalive=int(keepalive))


def _note_empty_levels(topic):
    note = empty_level_note(topic)
    if note:
        print(f"note: {note}", file=sys.stderr, flush=True)


def _either(yes, no, default):
    if yes and no:
        fail("--retain and --no-retain contradict each other; give one of them")
    return True if yes else False if no else default


def publisher_flags(*, topic, message, qos=0, retain=False, client_id=None, clean=True):
    """The flags of a program that publishes, over the defaults written in it."""
    start_program()
    parser = _parser()
    _client_flags(parser, client_id, clean, qos)
    parser.add_argument("--topic", help=f"topic name to publish to (default {topic})")
    parser.add_argument("--message", action="append", help=f"payload; repeat to publish several in order (default {message})")
    parser.add_argument("--retain", action="store_true", help="ask the broker to keep the message for future subscribers")
    parser.add_argument("--no-retain", action="store_true", help="an ordinary message, forgotten once delivered")
    args = parser.parse_args()
    topic = topic if args.topic is None else args.topic
    problem = topic_name_problem(topic)
    if problem:
        fail(f"cannot publish to {json.dumps(topic, ensure_ascii=False)}: {problem}")
    _note_empty_levels(topic)
    return SimpleNamespace(**_client_options(args, client_id, clean, qos), topic=topic,
                           messages=args.message or [message], retain=_either(args.retain, args.no_retain, retain))


def subscriber_flags(*, topic, qos=0, client_id=None, clean=True):
    """The flags of a program that subscribes, over the defaults written in it."""
    start_program()
    parser = _parser()
    _client_flags(parser, client_id, clean, qos)
    parser.add_argument("--topic", help=f"topic filter to subscribe to, + and # allowed, quoted (default {topic})")
    args = parser.parse_args()
    topic = topic if args.topic is None else args.topic
    problem = topic_filter_problem(topic)
    if problem:
        fail(f"cannot subscribe to {json.dumps(topic, ensure_ascii=False)}: {problem}")
    _note_empty_levels(topic)
    return SimpleNamespace(**_client_options(args, client_id, clean, qos), topic=topic)
