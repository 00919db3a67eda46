"""What can go wrong between a Python demo and its broker, each said in one line, as lib/problems.ts
says it for the TypeScript demos: a refused CONNACK, a broker that cannot be reached, a connection
lost or taken over by another client with the same id, a refused subscription. A client made with
reconnect_on_failure (a device, a listener) rides out a lost connection instead, as real ones do.
"""
import errno
import socket

from options import fail
from paho_compat import disconnect_code, number

_REFUSALS = {
    1: "it does not speak this protocol version (MQTT 3.1.1)",
    2: "it rejected the client id; pass another --id",
    3: "the server is unavailable",
    4: "bad user name or password",
    5: "this client is not authorised",
}


def report_problems(client, flags, reconnect_every=None):
    """Call after setting the client's callbacks: it watches CONNACK, SUBACK and the disconnects.

    paho keeps one callback of each kind, so this wraps the program's on_connect and on_subscribe.
    """
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
            fail(f"the broker at {flags.url} closed the connection before accepting it; check its log")
        if reconnect_every is None:
            _lost(flags)
        state["lost"] = True
        print(f"lost the connection to the broker at {flags.url}; trying again every {reconnect_every} s")

    client.on_connect, client.on_subscribe, client.on_disconnect = connected, subscribed, disconnected
    if reconnect_every is not None:
        client.reconnect_delay_set(reconnect_every, reconnect_every)


def cannot_connect(flags, error):
    """client.connect() raised `error`: say why in one line, and exit 1."""
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

