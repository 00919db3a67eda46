"""Home Assistant's MQTT discovery format for the Python demos, in the words of lib/discovery.ts: where
a config is published (<prefix>/<component>/[<node_id>/]<object_id>/config), what a device announces,
and what a listener keeps of what it discovered. A config comes from any client on the broker, so a
listener checks it the way it checks any input: it says what is wrong with a bad one and carries on.
"""
import json
import os
import re
from types import SimpleNamespace

from options import _client_flags, _client_options, _parser, fail, start_program
from topics import topic_filter_problem, topic_matches, topic_name_problem

ID_PATTERN = re.compile(r"^[a-zA-Z0-9_-]+$")

# Devices short of memory send abbreviated keys; Home Assistant expands them. These are the ones read here.
ABBREVIATIONS = {
    "uniq_id": "unique_id", "stat_t": "state_topic", "cmd_t": "command_topic", "avty_t": "availability_topic",
    "avty": "availability", "t": "topic", "pl_avail": "payload_available", "pl_not_avail": "payload_not_available",
    "unit_of_meas": "unit_of_measurement", "dev": "device", "ids": "identifiers", "cns": "connections",
}


def device_flags(*, prefix, base, kind, node):
    """The flags of the device, over the defaults written in it (as lib/discovery-options.ts)."""
    start_program()
    parser = _parser()
    parser.add_argument("--url", help="broker to connect to (default $MQTT_URL, else mqtt://127.0.0.1:1883)")
    parser.add_argument("--id", help="client identifier (default: a random one)")
    parser.add_argument("--kind", default=kind, help=f"light (obeys ON and OFF) or sensor (a thermometer in °C); default {kind}")
    parser.add_argument("--node", default=node, help=f"node id, the device: letters, digits, _ and - (default {node})")
    parser.add_argument("--object", help="object id, the entity on the device (default light, or temperature for a sensor)")
    parser.add_argument("--name", help='the name listeners show (default: made of the two ids, e.g. "Kitchen light")')
    parser.add_argument("--state", help="state to start in: ON or OFF for a light (default ON), a number for a sensor (default 21.5)")
    parser.add_argument("--prefix", default=prefix, help=f"discovery prefix: the first level of every config topic (default {prefix})")
    parser.add_argument("--base", default=base, help=f"state, command and availability topics go under <base>/<node>/<object> (default {base})")
    parser.add_argument("--pid-file", help='write the process id to FILE, to pull the plug with kill -KILL "$(cat FILE)"')
    args = parser.parse_args()
    if args.kind not in ("light", "sensor"):
        fail(f"--kind must be light or sensor, not {json.dumps(args.kind)}")
    light = args.kind == "light"
    node_id = _check_id("--node", args.node)
    object_id = _check_id("--object", args.object if args.object is not None else "light" if light else "temperature")
    state = args.state if args.state is not None else "ON" if light else "21.5"
    if light and state not in ("ON", "OFF"):
        fail(f"--state of a light must be ON or OFF, not {json.dumps(state)}")
    if not light and not _is_number(state):
        fail(f"--state of a sensor must be a number, not {json.dumps(state)}")
    if args.name == "":
        fail("--name must not be empty; leave it out to get one made of --node and --object")
    if args.pid_file is not None:
        try:
            with open(args.pid_file, "w") as pid_file:
                pid_file.write(f"{os.getpid()}\n")
        except OSError as error:
            fail(f"cannot write --pid-file {args.pid_file}: {error.strerror}")
    args.qos, args.no_clean, args.clean, args.keepalive = None, False, False, None
    return SimpleNamespace(**_client_options(args, None, True, 0), kind=args.kind,
                           prefix=_check_topic("--prefix", args.prefix), base=_check_topic("--base", args.base),
                           node_id=node_id, object_id=object_id, state=state,
                           name=args.name or _humanise(f"{node_id} {object_id}"), device_name=_humanise(node_id))


def listener_flags(*, prefix, topic, qos=0):
    """The flags of the listener, over the defaults written in it; --prefix alone moves the filter along."""
    start_program()
    parser = _parser()
    _client_flags(parser, None, True, qos)
    parser.add_argument("--prefix", help=f"discovery prefix: the first level of every config topic (default {prefix})")
    parser.add_argument("--topic", help=f"filter for the config topics to follow, quoted (default {topic})")
    args = parser.parse_args()
    chosen = _check_topic("--prefix", args.prefix if args.prefix is not None else prefix)
    moved = chosen + topic[len(prefix):] if topic.startswith(f"{prefix}/") else topic
    topic = args.topic if args.topic is not None else moved
    problem = topic_filter_problem(topic)
    if problem:
        fail(f"cannot subscribe to {json.dumps(topic, ensure_ascii=False)}: {problem}")
    return SimpleNamespace(**_client_options(args, None, True, qos), prefix=chosen, topic=topic)


def announcement(device):
    """What a device announces: its topics (command only for a light), and the config naming them."""
    home = f"{device.base}/{device.node_id}/{device.object_id}"
    light = device.kind == "light"
    topics = SimpleNamespace(config=f"{device.prefix}/{device.kind}/{device.node_id}/{device.object_id}/config",
                             state=home, availability=f"{home}/availability", command=f"{home}/set" if light else None)
    config = {
        "name": device.name,
        "unique_id": f"{device.node_id}_{device.object_id}",
        "device": {"identifiers": [device.node_id], "name": device.device_name},
        "state_topic": topics.state,
        "availability_topic": topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
    }
    if light:
        config.update(command_topic=topics.command, payload_on="ON", payload_off="OFF")
    else:
        config.update(device_class="temperature", unit_of_measurement="°C")
    return topics, config


class Discoveries:
    """What Home Assistant keeps of discovery, without the MQTT calls (lib/discovery.ts's Discoveries).

    read() turns each message into news: topics to stop following, lines to print, topics to follow.
    """

    def __init__(self, prefix, topic_filter):
        self.prefix, self.filter = prefix, topic_filter
        self.entities = {}  # config topic -> entity
        self.last_seen = {}  # state or availability topic -> last payload

    def followed(self):
        """Every topic followed beside the filter, availability before state: to subscribe again."""
        topics = [t for e in self.entities.values() for t in _topics_of(e)]
        return [t for i, t in enumerate(topics) if t not in topics[:i] and not topic_matches(self.filter, t)]

    def read(self, topic, payload, retain):
        news = SimpleNamespace(unfollow=[], lines=[], follow=[])
        say = news.lines.append
        retained = " (retained)" if retain else ""
        entities = list(self.entities.values())
        state_of = [e for e in entities if e["state_topic"] == topic]
        availability_of = [(e, a) for e in entities for a in e["availability"] if a["topic"] == topic]
        if state_of or availability_of:
            # An empty payload clears a retained state; it is not a state. What has not changed is no news.
            if payload == "" or self.last_seen.get(topic) == payload:
                return news
            self.last_seen[topic] = payload
            for e in state_of:
                say(f"{e['name']} state {payload}{' ' + e['unit'] if e['unit'] else ''}{retained}")
            for e, a in availability_of:
                said = "online" if payload == a["online"] else "offline" if payload == a["offline"] else None
                say(f"{e['name']} is {said}{retained}" if said else
                    f"{e['name']} sent {json.dumps(payload)} on {topic}, neither {json.dumps(a['online'])} nor {json.dumps(a['offline'])}")
            return news

        at = parse_config_topic(self.prefix, topic)
        if at is None:
            say(f"{topic} {payload or '(empty)'}{retained}")  # under the filter, not a config: as it is
            return news
        if isinstance(at, str):
            say(f"ignored {topic}: {at}")
            return news
        known = self.entities.get(topic)
        if payload == "":
            # An empty retained message on a config topic is how a device is removed.
            if not known:
                say(f"ignored {topic}: an empty config, but nothing was discovered there")
                return news
            news.unfollow += self._forget(topic)
            say(f"removed {known['component']} {_path(known)} \"{known['name']}\"")
            return news
        entity = parse_config(at, payload)
        if isinstance(entity, str):
            say(f"ignored {topic}: {entity}")
            return news
        if known == entity:
            return news
        twin = next((t for t, e in self.entities.items() if t != topic and e["unique_id"] == entity["unique_id"]), None)
        if twin:
            say(f"ignored {topic}: unique_id {json.dumps(entity['unique_id'])} is already used by {twin}")
            return news
        if known:
            news.unfollow += self._forget(topic)
        self.entities[topic] = entity
        say(f"{'updated' if known else 'discovered'} {entity['component']} {_path(entity)} \"{entity['name']}\"{retained}")
        news.follow = [t for t in _topics_of(entity) if self._users(t) == 1 and not topic_matches(self.filter, t)]
        return news

    def _forget(self, config_topic):
        entity = self.entities.pop(config_topic)
        unused = [t for t in _topics_of(entity) if self._users(t) == 0]
        for t in unused:
            self.last_seen.pop(t, None)
        return [t for t in unused if not topic_matches(self.filter, t)]

    def _users(self, topic):
        return sum(1 for e in self.entities.values() if topic == e["state_topic"] or topic in (a["topic"] for a in e["availability"]))


def parse_config_topic(prefix, topic):
    """The levels of a config topic under `prefix`; a string that says what is wrong; None if not meant as one."""
    if not topic.startswith(f"{prefix}/") or not topic.endswith("/config"):
        return None
    levels = topic[len(prefix) + 1:].split("/")[:-1]
    shape = f"expected {prefix}/<component>/[<node_id>/]<object_id>/config"
    if len(levels) not in (2, 3):
        return f"not a discovery topic: {len(levels) + 2} levels, {shape}"
    bad = next((level for level in levels if not ID_PATTERN.match(level)), None)
    if bad is not None:
        return f"level {json.dumps(bad)} may only use letters, digits, _ and - ({shape})"
    component, node_id, object_id = levels if len(levels) == 3 else (levels[0], None, levels[1])
    return {"component": component, "node_id": node_id, "object_id": object_id}


def parse_config(at, payload):
    """The entity a config describes, or a string that says what is wrong with it."""
    try:
        raw = json.loads(payload)
    except ValueError:
        return f"not JSON ({payload[:40] + '...' if len(payload) > 40 else payload})"
    if not isinstance(raw, dict):
        return f"the config must be a JSON object, not {_kind(raw)}"
    config = _expand(raw)
    missing = [k for k in ("name", "unique_id", "state_topic") if k not in config]
    if missing:
        return "missing " + " and ".join(f'"{k}"' for k in missing)
    if at["component"] == "light" and "command_topic" not in config:
        return 'a light needs "command_topic", the topic it takes ON and OFF on'
    for key in ("name", "unique_id", "unit_of_measurement", "payload_available", "payload_not_available"):
        if key in config and not isinstance(config[key], str):
            return f'"{key}" must be a string, not {_kind(config[key])}'
    for key in ("state_topic", "command_topic", "availability_topic"):
        problem = _topic_problem(config[key]) if key in config else None
        if problem:
            return f'"{key}" {problem}'
    if "device" in config:
        device = _expand(config["device"]) if isinstance(config["device"], dict) else {}
        if "identifiers" not in device and "connections" not in device:
            return '"device" needs "identifiers" (or "connections") to tell one device from another'
    online = config.get("payload_available", "online")
    offline = config.get("payload_not_available", "offline")
    availability = [{"topic": config["availability_topic"], "online": online, "offline": offline}] if "availability_topic" in config else []
    if "availability" in config:
        entries = config["availability"] if isinstance(config["availability"], list) else [None]
        for raw_entry in entries:
            entry = _expand(raw_entry, config.get("~")) if isinstance(raw_entry, dict) else {}
            if "topic" not in entry:
                return '"availability" must be a list of objects, each with a "topic"'
            problem = _topic_problem(entry["topic"])
            if problem:
                return f'the "topic" of an "availability" entry {problem}'
            availability.append({"topic": entry["topic"],
                                 "online": entry["payload_available"] if isinstance(entry.get("payload_available"), str) else online,
                                 "offline": entry["payload_not_available"] if isinstance(entry.get("payload_not_available"), str) else offline})
    return {**at, "name": config["name"], "unique_id": config["unique_id"], "state_topic": config["state_topic"],
            "command_topic": config.get("command_topic"), "unit": config.get("unit_of_measurement"), "availability": availability}


def _expand(obj, base=None):
    """Full key names, and topics with the ~ base put in."""
    base = obj.get("~") if base is None else base
    expanded = {}
    for key, value in obj.items():
        full = ABBREVIATIONS.get(key, key)
        if (full == "topic" or full.endswith("_topic")) and isinstance(base, str) and isinstance(value, str):
            value = base + value[1:] if value.startswith("~") else value[:-1] + base if value.endswith("~") else value
        expanded[full] = value
    return expanded


def _topics_of(entity):
    topics = [a["topic"] for a in entity["availability"]] + [entity["state_topic"]]
    return [t for i, t in enumerate(topics) if t not in topics[:i]]


def _path(entity):
    return entity["object_id"] if entity["node_id"] is None else f"{entity['node_id']}/{entity['object_id']}"


def _topic_problem(value):
    if not isinstance(value, str):
        return f"must be a topic name, not {_kind(value)}"
    problem = topic_name_problem(value)
    return problem and f"is not a topic a client can publish to: {problem}"


def _kind(value):
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return {bool: "a boolean", str: "a string"}.get(type(value), "a number")


def _check_id(flag, value):
    if not ID_PATTERN.match(value):
        fail(f"{flag} must be made of letters, digits, _ and - only (Home Assistant's rule for ids), not {json.dumps(value)}")
    return value


def _check_topic(flag, topic):
    problem = topic_name_problem(topic)
    if problem:
        fail(f"{flag} {json.dumps(topic)} cannot begin a topic name: {problem}")
    return topic


def _is_number(text):
    try:
        return float(text) == float(text) and abs(float(text)) != float("inf")
    except ValueError:
        return False


def _humanise(ids):
    words = re.sub(r"[_-]+", " ", ids)
    return words[:1].upper() + words[1:]
