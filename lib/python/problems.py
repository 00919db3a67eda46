"""What can go wrong between a Python demo and its broker, each said in one line, as lib/problems.ts
says it for the TypeScript demos: a refused CONNACK, a broker that cannot be reached, a connection
lost or taken over by another client with the same id, a refused subscription. A client made with
reconnect_on_failure (a device, a listener) rides out a lost connection instead, as real ones do.
"""
import errno
import os
import socket
import ssl
import sys

from options import fail
from paho_compat import disconnect_code, number

_REFUSALS = {
    1: "it does not speak this protocol version (MQTT 3.1.1)",
    2: "it rejected the client id; pass another --id",
    3: "the server is unavailable",
    4: "bad user name or password",
    # Mosquitto answers 5 to a wrong password too: it tells a guesser nothing.
    5: ("not authorised; give a --username and --password it knows (or the client certificate it "
        "asks for)"),
}


# The client report_problems() watches, for cannot_connect() to see how far it got.
_watched = {}


def report_problems(client, flags, reconnect_every=None):
    """Call after setting the client's callbacks: it watches CONNACK, SUBACK and the disconnects.

    paho keeps one callback of each kind, so this wraps the program's on_connect and on_subscribe.
    """
    _watched["client"] = client
    state = {"connected": False, "lost": False}
    on_connect, on_subscribe = client.on_connect, client.on_subscribe

    def connected(client, userdata, connect_flags, rc, properties=None):
        code = number(rc)
        if code != 0:
            fail(f"the broker at {flags.url} refused the connection: {_REFUSALS.get(code, rc)} (return code {code})")
        state.update(connected=True, lost=False)
        if on_connect:
            on_connect(client, userdata, connect_flags, rc, properties)

    def subscribed(client, userdata, mid, granted, properties=None):
        if any(number(g) >= 128 for g in granted):
            fail("the broker refused a subscription; check its access rules")
        if on_subscribe:
            on_subscribe(client, userdata, mid, granted, properties)

    def disconnected(client, userdata, *args):
        if disconnect_code(args) == 0 or state["lost"]:
            return  # the program disconnected itself, or already said the connection was lost
        if not state["connected"]:
            fail(_closed_before_connack(flags, after_handshake=True))
        if reconnect_every is None:
            _lost(flags)
        state["lost"] = True
        print(f"lost the connection to the broker at {flags.url}; trying again every {reconnect_every} s")

    client.on_connect, client.on_subscribe, client.on_disconnect = connected, subscribed, disconnected
    # paho 1.x lets a TLS error that comes after the handshake (TLS 1.3 asks for a client
    # certificate then) out of loop_forever: one line, as cannot_connect() says the others.
    def uncaught(kind, error, trace):
        if not isinstance(error, ssl.SSLError):
            return sys.__excepthook__(kind, error, trace)
        try:
            # The stream ended after a handshake that went well: see _closed_before_connack().
            if isinstance(error, ssl.SSLEOFError):
                fail(_closed_before_connack(flags, after_handshake=True))
            cannot_connect(flags, error)
        except SystemExit:
            os._exit(1)  # an exit raised in an excepthook would be reported as its own failure
    sys.excepthook = uncaught
    if reconnect_every is not None:
        client.reconnect_delay_set(reconnect_every, reconnect_every)


def _closed_before_connack(flags, after_handshake=False):
    """The broker closed the connection before its CONNACK: on a TLS port, it read the CONNECT as a
    broken handshake; on a plain port, the handshake as a broken CONNECT. Right after a handshake
    that went well (paho makes it in connect()), it wanted a client certificate."""
    if flags.tls and after_handshake and flags.cert is None:
        return (f"cannot connect to {flags.url} over TLS: the broker needs a client certificate; "
                "pass --cert and --key")
    if flags.url.startswith(("mqtt:", "tcp:")):
        secure = "mqtts:" + flags.url.split(":", 1)[1]
        return (f"the broker at {flags.url} closed the connection before accepting it; if that "
                f"port speaks TLS, use {secure} with --cafile, else check its log")
    if flags.url.startswith("mqtts:"):
        plain = "mqtt:" + flags.url.split(":", 1)[1]
        return (f"the broker at {flags.url} closed the connection during the TLS handshake; if "
                f"that port speaks plain MQTT, use {plain}, else check its log")
    return f"the broker at {flags.url} closed the connection before accepting it; check its log"


def _tls_problem(flags, error):
    """What went wrong in a TLS handshake, in the words of lib/problems.ts, or None."""
    refused = f"cannot connect to {flags.url} over TLS:"
    code = getattr(error, "verify_code", None)
    if code in (2, 18, 19, 20, 21):
        return (f"{refused} its certificate is signed by a CA this client does not trust; pass "
                "--cafile with the CA that signed it (without --cafile, only the system's CAs are "
                "trusted)")
    if code == 10:
        return f"{refused} its certificate has expired; the broker needs a new one"
    if code in (62, 64):
        return (f"{refused} the host name {flags.host} does not match the certificate, which is "
                f"for {_names(flags)}; connect with a name it was made for")
    reason = getattr(error, "reason", None)
    if reason in ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_HANDSHAKE_FAILURE"):
        return f"{refused} the broker needs a client certificate; pass --cert and --key"
    if reason in ("SSLV3_ALERT_BAD_CERTIFICATE", "TLSV1_ALERT_UNKNOWN_CA"):
        return f"{refused} the broker does not trust --cert; give one signed by a CA it trusts"
    if reason in ("WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG"):
        plain = "mqtt:" + flags.url.split(":", 1)[1]
        return f"{refused} the port does not speak TLS; for plain MQTT use {plain}"
    if isinstance(error, (ssl.SSLEOFError, ConnectionResetError)) and flags.tls:
        # paho keeps the socket once the handshake has gone well, before it sends the CONNECT.
        shaken = _watched.get("client") is not None and _watched["client"]._sock is not None
        return _closed_before_connack(flags, after_handshake=shaken)
    return None


def _names(flags):
    """The names the broker's certificate was made for, read in a handshake that checks the CA
    only."""
    context = ssl.create_default_context(cafile=flags.cafile)
    context.check_hostname = False
    with socket.create_connection((flags.host, flags.port), timeout=2) as raw:
        with context.wrap_socket(raw) as tls:
            names = tls.getpeercert().get("subjectAltName", ())
    return ", ".join(value for _, value in names) or "other names"


def cannot_connect(flags, error):
    """client.connect() raised `error`: say why in one line, and exit 1."""
    tls = _tls_problem(flags, error)
    if tls:
        fail(tls)
    if isinstance(error, ConnectionRefusedError):
        fail(f"cannot reach the broker at {flags.url} (connection refused); start one with npm run broker, or pass --url")
    if isinstance(error, socket.gaierror):
        fail(f"cannot find the host of {flags.url}; check --url or MQTT_URL")
    if isinstance(error, (socket.timeout, TimeoutError)) or error.errno == errno.ETIMEDOUT:
        fail(f"no answer from {flags.url}; is an MQTT broker listening there? check --url")
    fail(f"cannot connect to {flags.url}: {error.strerror or error}")


def _lost(flags):
    """Lost a connection the broker had accepted: it stopped, or another client took the session over."""
    probe = socket.socket()
    probe.settimeout(2)
    try:
        probe.connect((flags.host, flags.port))
    except OSError:
        fail(f"lost the connection to the broker at {flags.url}; is it still running? (start one with npm run broker)")
    finally:
        probe.close()
    if not flags.client_id:
        fail(f"the broker at {flags.url} is running but closed this connection; check its log")
    fail(f"the broker at {flags.url} closed this connection: another client connected with the same client id, "
         f"{flags.client_id}, and took its session over; a broker keeps one connection per client id, "
         "so give each a different --id")

