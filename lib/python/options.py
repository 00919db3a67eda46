"""The flags of the Python demos, named as those of the TypeScript ones (lib/demo-flags.ts), and
checked before anything reaches the broker. A demo writes what it does in its paho calls,
`retain=flags.get("retain", True)`: get() gives the flag when it was given, else the literal.
--help shows those literals as the defaults, read from the program's source (written_in_calls).
MQTT_URL sets the default --url. When something is wrong: one line on stderr and exit code 1, never
a traceback.
"""
import argparse
import ast
import json
import os
import ssl
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


class Flags(SimpleNamespace):
    """A demo's flags, checked: url, host, port, transport, keepalive and client_id (the one the
    client will use, for the messages of problems.py), password, and tls with the files of --cafile,
    --cert and --key (cafile, cert, key) always; the others through get()."""

    def get(self, name, written):
        """The flag `name` (id, clean, qos, username, topic, messages, retain) if it was given, else
        `written`, what the program writes in its call."""
        value = self.given.get(name)
        return written if value is None else value


def written_in_calls():
    """What the running program writes in its calls where a flag may replace it: the literal of
    each flags.get(NAME, LITERAL) in its source. --help shows them as the defaults, and the checks
    see them as the call will (--no-clean needs a client id, unless the call writes one)."""
    with open(sys.argv[0], encoding="utf-8") as source:
        tree = ast.parse(source.read())
    written = {}
    for node in ast.walk(tree):
        call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        if (call and node.func.attr == "get" and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "flags" and len(node.args) == 2
                and isinstance(node.args[0], ast.Constant)):
            try:
                written[node.args[0].value] = ast.literal_eval(node.args[1])
            except ValueError:
                pass  # not a literal: --help shows no default for it
    return written


def _client_flags(parser, client_id, clean, qos):
    parser.add_argument("--url", help=f"broker to connect to (default $MQTT_URL, else {DEFAULT_URL})")
    parser.add_argument("--qos", help=f"quality of service: 0, 1 or 2 (default {qos})")
    parser.add_argument("--id", help=f"client identifier (default{f' {client_id}' if client_id else ': a random one'})")
    parser.add_argument("--no-clean", action="store_true", help="keep the session on the broker after disconnecting (needs --id)"
                        + ("" if clean else "; the default here"))
    parser.add_argument("--clean", action="store_true", help="start with a clean session, which ends when the client disconnects"
                        + ("; the default here" if clean else ""))
    parser.add_argument("--keepalive", help="ping the broker after this many seconds without a packet to send (default 60)")
    parser.add_argument("--username",
                        help="user name, for a broker that asks for one (default $MQTT_USERNAME)")
    parser.add_argument("--password",
                        help="password, for a broker that asks for one (default $MQTT_PASSWORD)")
    parser.add_argument("--cafile",
                        help="the CA to trust for mqtts:// and wss:// (default the system's)")
    parser.add_argument("--cert",
                        help="client certificate to show a broker that asks for one (needs --key)")
    parser.add_argument("--key", help="the private key of --cert")


def _client_options(args, client_id, clean, qos, written=None):
    """The connection's options and the given flags, checked over what the program writes: its
    `client_id`, `clean` and `qos`, and all it writes (`written`: its user name, say)."""
    url = args.url or os.environ.get("MQTT_URL") or DEFAULT_URL
    parsed = urlparse(url)
    if parsed.scheme == "udp":
        fail(f"cannot connect to {url}: MQTT needs a two-way byte stream such as TCP, not UDP datagrams "
             "(MQTT 3.1.1 §4.2); over UDP devices speak MQTT-SN, a protocol of its own")
    if parsed.scheme not in ("mqtt", "tcp", "ws", "mqtts", "wss") or not parsed.hostname:
        fail(f"cannot connect to {url}: the Python demos take mqtt://, mqtts://, ws:// or wss:// "
             f"URLs, as in {DEFAULT_URL}")
    if args.qos is not None and args.qos not in ("0", "1", "2"):
        fail(f"--qos must be 0, 1 or 2, not {json.dumps(args.qos)}")
    if args.id == "":
        fail("--id must not be empty; leave it out to get a random client id")
    if args.clean and args.no_clean:
        fail("--clean and --no-clean contradict each other; give one of them")
    given_clean = True if args.clean else False if args.no_clean else None
    # What the call will send: the flag, or else what the program writes.
    if not (clean if given_clean is None else given_clean) and not (args.id or client_id):
        fail("--no-clean needs --id: the broker finds a kept session by its client id")
    keepalive = 60 if args.keepalive is None else args.keepalive
    if not str(keepalive).isdigit() or int(keepalive) > 65535:
        fail(f"--keepalive must be a number of seconds from 0 to 65535, not {json.dumps(args.keepalive)}")
    websocket, tls = parsed.scheme in ("ws", "wss"), parsed.scheme in ("mqtts", "wss")
    username = args.username or os.environ.get("MQTT_USERNAME")
    password = args.password or os.environ.get("MQTT_PASSWORD")
    if password is not None and username is None and (written or {}).get("username") is None:
        fail("a password needs a user name: add --username (or MQTT_USERNAME)")
    _check_tls(url, tls, args)
    given = dict(id=args.id, clean=given_clean, qos=None if args.qos is None else int(args.qos),
                 username=username)
    port = parsed.port or {"ws": 80, "wss": 443, "mqtts": 8883}.get(parsed.scheme, 1883)
    return dict(url=url, host=parsed.hostname, port=port,
                transport="websockets" if websocket else "tcp", keepalive=int(keepalive),
                client_id=args.id or client_id or "", given=given, password=password, tls=tls,
                cafile=args.cafile, cert=args.cert, key=args.key)


def _check_tls(url, tls, args):
    """--cafile, --cert and --key, checked now: a missing file or a key of another certificate is
    one line before any connection."""
    given = [f"--{name}" for name in ("cafile", "cert", "key") if getattr(args, name) is not None]
    if not given:
        return
    if not tls:
        fail(f"{given[0]} is for a TLS connection, and {url} is plain; use mqtts:// (or wss://)")
    if (args.cert is None) != (args.key is None):
        fail("--cert and --key go together: the certificate, and the private key it was made for")
    for flag in given:
        path = getattr(args, flag[2:])
        if not os.path.isfile(path):
            fail(f"cannot read {flag} {path} (no such file); check the path")
    try:
        context = ssl.create_default_context(cafile=args.cafile)
        if args.cert is not None:
            context.load_cert_chain(args.cert, args.key)
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            fail(f"--key {args.key} is not the key of --cert {args.cert}; give the key made with "
                 "that certificate")
        files = ", ".join(getattr(args, flag[2:]) for flag in given)
        fail(f"cannot use {files} for TLS ({error.reason}); give PEM files, as openssl writes them")


def _note_empty_levels(topic):
    note = empty_level_note(topic)
    if note:
        print(f"note: {note}", file=sys.stderr, flush=True)


def _either(yes, no, default):
    if yes and no:
        fail("--retain and --no-retain contradict each other; give one of them")
    return True if yes else False if no else default


def _by_default(value):
    """` (default X)` for --help, or nothing when the program writes no X."""
    return "" if value is None else f" (default {value})"


def publisher_flags():
    """The flags of a program that publishes, over what its calls write."""
    start_program()
    written = written_in_calls()
    client_id, clean, qos = written.get("id"), written.get("clean", True), written.get("qos", 0)
    messages = written.get("messages")
    parser = _parser()
    _client_flags(parser, client_id, clean, qos)
    parser.add_argument("--topic",
                        help="topic name to publish to" + _by_default(written.get("topic")))
    parser.add_argument("--message", action="append",
                        help="payload; repeat to publish several in order"
                        + _by_default(None if messages is None else ", ".join(messages)))
    parser.add_argument("--retain", action="store_true", help="ask the broker to keep the message for future subscribers")
    parser.add_argument("--no-retain", action="store_true", help="an ordinary message, forgotten once delivered")
    args = parser.parse_args()
    topic = written.get("topic") if args.topic is None else args.topic
    if topic is not None:
        problem = topic_name_problem(topic)
        if problem:
            fail(f"cannot publish to {json.dumps(topic, ensure_ascii=False)}: {problem}")
        _note_empty_levels(topic)
    flags = Flags(**_client_options(args, client_id, clean, qos, written))
    retain = _either(args.retain, args.no_retain, None)
    flags.given.update(topic=args.topic, messages=args.message, retain=retain)
    return flags


def subscriber_flags():
    """The flags of a program that subscribes, over what its calls write."""
    start_program()
    written = written_in_calls()
    client_id, clean, qos = written.get("id"), written.get("clean", True), written.get("qos", 0)
    parser = _parser()
    _client_flags(parser, client_id, clean, qos)
    parser.add_argument("--topic", help="topic filter to subscribe to, + and # allowed, quoted"
                        + _by_default(written.get("topic")))
    args = parser.parse_args()
    topic = written.get("topic") if args.topic is None else args.topic
    if topic is not None:
        problem = topic_filter_problem(topic)
        if problem:
            fail(f"cannot subscribe to {json.dumps(topic, ensure_ascii=False)}: {problem}")
        _note_empty_levels(topic)
    flags = Flags(**_client_options(args, client_id, clean, qos, written))
    flags.given.update(topic=args.topic)
    return flags
