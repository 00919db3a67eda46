"""What differs between paho-mqtt 1.x (Debian bookworm ships 1.6) and 2.x, so one program runs on both.

paho 2 asks which callback signatures a program uses; the demos use version 2's, whose extra
arguments 1.x does not pass (hence their default values), and hand over reason codes as objects
where 1.x hands over numbers.
"""
import sys

try:
    import paho.mqtt.client as mqtt
except ImportError:
    print(f"error: paho-mqtt is not installed for {sys.executable}; apt-get install python3-paho-mqtt "
          "(for /usr/bin/python3), or pip install paho-mqtt", file=sys.stderr)
    sys.exit(1)

# The first argument of mqtt.Client() on paho 2; nothing on 1.x, which has no such argument.
CALLBACK_API = (mqtt.CallbackAPIVersion.VERSION2,) if hasattr(mqtt, "CallbackAPIVersion") else ()


def number(code):
    """A result code, a granted QoS: a ReasonCode on paho 2, an int on 1.x."""
    return getattr(code, "value", code)


def session_present(connect_flags):
    """The CONNACK's session-present flag: an object on paho 2, a dict on 1.x."""
    if hasattr(connect_flags, "session_present"):
        return bool(connect_flags.session_present)
    return bool(connect_flags.get("session present"))


def disconnect_code(args):
    """The reason code among on_disconnect's arguments: (flags, code, properties) on 2; on 1.x (code,),
    or (code, properties) for MQTT 5."""
    return number(args[1] if len(args) >= 3 else args[0])


def disconnect_with_will():
    """MQTT 5's DISCONNECT reason code 4: the client leaves, and the broker still publishes its will."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt import reasoncodes
    reason = getattr(reasoncodes, "ReasonCode", None) or reasoncodes.ReasonCodes
    return reason(PacketTypes.DISCONNECT, "Disconnect with will message")


def keeps_session(client):
    """Whether the client asked the broker to keep its session (clean_session=False): paho keeps it
    in an attribute of its own, the same on 1.x and 2.x, where MQTT.js has client.options.clean."""
    return not client._clean_session
