"""Home Assistant's MQTT discovery for the Python demos, in the words of lib/discovery/format.ts,
lib/discovery/home-assistant.ts and lib/discovery/device.ts: where a config is published, how its keys are abbreviated
(lib/discovery/abbreviations.json, shared with TypeScript), what a device announces, and what a listener
keeps of what it discovered. A config comes from any client on the broker, so a listener checks it the
way it checks any input: it says what is wrong with a bad one and carries on.
"""
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

from options import (Flags, _by_default, _client_flags, _client_options, _parser, fail,
                     start_program, written_in_calls)
from topics import topic_filter_problem, topic_matches, topic_name_problem

_ROOT = Path(__file__).resolve().parents[2]
_TABLE = json.loads((_ROOT / "lib" / "discovery" / "abbreviations.json").read_text(encoding="utf-8"))
_PACKAGE = json.loads((_ROOT / "package.json").read_text(encoding="utf-8"))
ENTITY_KEYS, DEVICE_KEYS, ORIGIN_KEYS = _TABLE["entity"], _TABLE["device"], _TABLE["origin"]
# object_id, deprecated, is noted on its own.
_KNOWN_ENTITY = set(ENTITY_KEYS.values()) | set(_TABLE["unabbreviated"]["entity"]) | {"~", "object_id"}
_KNOWN_DEVICE = set(DEVICE_KEYS.values()) | set(_TABLE["unabbreviated"]["device"])
_KNOWN_ORIGIN = set(ORIGIN_KEYS.values())

ID_PATTERN = re.compile(r"^[a-zA-Z0-9_-]+$")
COMPONENTS = ("light", "temperature")
DEFAULT_PREFIX = "homeassistant"
ORIGIN = {"name": _PACKAGE["name"], "sw": _PACKAGE["version"]}
# What a device config may set once for all its components; a component's own value wins.
SHARED = ("availability", "availability_topic", "availability_mode", "availability_template", "payload_available",
          "payload_not_available", "command_topic", "state_topic", "qos", "encoding")
ON_OFF = ("light", "switch", "binary_sensor")
REQUIRED = {
    "light": ("command_topic", "the topic it takes its on and off commands on"),
    "switch": ("command_topic", "the topic it takes its on and off commands on"),
    "sensor": ("state_topic", "the topic it reports on"),
    "binary_sensor": ("state_topic", "the topic it reports on"),
}


def status_topic(prefix):
    """Home Assistant's birth and will topic, under the prefix (see lib/discovery/format.ts)."""
    return f"{prefix}/status"


def device_flags(prefix=DEFAULT_PREFIX, base="home", node="kitchen", components=COMPONENTS):
    """The flags of the device, the kitchen of docs/05-discovery.md unless they say otherwise (as
    lib/discovery/flags.ts)."""
    start_program()
    names = " and ".join(COMPONENTS)
    parser = _parser()
    parser.add_argument("--url", help="broker to connect to (default $MQTT_URL, else mqtt://127.0.0.1:1883)")
    parser.add_argument("--id", help="client identifier (default: a random one)")
    parser.add_argument("--node", default=node, help=f"node id, the device: letters, digits, _ and - (default {node})")
    parser.add_argument("--name", help="the device's name, which listeners put before each entity's (default: made of --node)")
    parser.add_argument("--components", help=f"what the device has, of {names}, with commas (default {','.join(components)})")
    parser.add_argument("--per-component", action="store_true", help="one config per component, the article's form")
    parser.add_argument("--drop", help="a component the device no longer has: removed from Home Assistant at the first connection")
    parser.add_argument("--state", help="the light's state to start in: its --payload-on or --payload-off (default the first)")
    parser.add_argument("--temperature", default="21.5", help="what the thermometer reports, in °C (default 21.5)")
    parser.add_argument("--payload-on", default="ON", help="what the light takes and reports for on (default ON)")
    parser.add_argument("--payload-off", default="OFF", help="what the light takes and reports for off (default OFF)")
    parser.add_argument("--prefix", default=prefix, help=f"discovery prefix: the first level of every config topic (default {prefix})")
    parser.add_argument("--base", default=base, help=f"its state, command and availability topics go under <base>/<node> (default {base})")
    parser.add_argument("--pid-file", help='write the process id to FILE, to pull the plug with kill -KILL "$(cat FILE)"')
    args = parser.parse_args()
    node_id = _check_id("--node", args.node)
    drop = None if args.drop is None else _component("--drop", args.drop)
    listed = None if args.components is None else [_component("--components", c) for c in args.components.split(",")]
    if listed and len(set(listed)) < len(listed):
        fail(f"--components lists a component twice: {args.components}")
    if drop and listed and drop in listed:
        fail(f"--drop {drop} removes a component that --components still lists; leave it out of one of them")
    chosen = listed if listed is not None else [c for c in components if c != drop]
    if not chosen:
        fail(f"the device has no component left; give it one of {names} with --components")
    on, off = args.payload_on, args.payload_off
    if on == "" or off == "" or on == off:
        fail(f"--payload-on and --payload-off must be two different payloads, not {json.dumps(on)} and {json.dumps(off)}")
    state = on if args.state is None else args.state
    if args.state is not None and "light" not in chosen:
        fail("--state is the light's, and this device has no light")
    if state not in (on, off):
        fail(f"--state of the light must be {on} or {off}, not {json.dumps(state)}")
    if not _is_number(args.temperature):
        fail(f"--temperature must be a number, not {json.dumps(args.temperature)}")
    if args.name == "":
        fail("--name must not be empty; leave it out to get one made of --node")
    if args.pid_file is not None:
        try:
            with open(args.pid_file, "w") as pid_file:
                pid_file.write(f"{os.getpid()}\n")
        except OSError as error:
            fail(f"cannot write --pid-file {args.pid_file}: {error.strerror}")
    args.qos, args.no_clean, args.clean, args.keepalive = None, False, False, None
    args.username = args.password = args.cafile = args.cert = args.key = None
    return SimpleNamespace(**_client_options(args, None, True, 0), prefix=_check_topic("--prefix", args.prefix),
                           base=_check_topic("--base", args.base), node_id=node_id, device_name=args.name or humanise(node_id),
                           components=chosen, per_component=args.per_component, drop=drop, payload_on=on, payload_off=off,
                           state=state, temperature=args.temperature)


def listener_flags():
    """The flags of the listener, over what its calls write; --prefix alone moves its filter."""
    start_program()
    written = written_in_calls()
    topic, qos = written.get("topic"), written.get("qos", 0)
    parser = _parser()
    _client_flags(parser, None, True, qos)
    parser.add_argument("--prefix", help="discovery prefix: the first level of every config topic"
                        f" (default {DEFAULT_PREFIX})")
    parser.add_argument("--topic",
                        help=f"filter for the config topics to follow, quoted{_by_default(topic)}")
    args = parser.parse_args()
    chosen = _check_topic("--prefix", args.prefix if args.prefix is not None else DEFAULT_PREFIX)
    moves = args.prefix is not None and topic is not None and topic.startswith(f"{DEFAULT_PREFIX}/")
    moved = chosen + topic[len(DEFAULT_PREFIX):] if moves else None
    given = args.topic if args.topic is not None else moved
    chosen_filter = given if given is not None else topic
    problem = None if chosen_filter is None else topic_filter_problem(chosen_filter)
    if problem:
        fail(f"cannot subscribe to {json.dumps(chosen_filter, ensure_ascii=False)}: {problem}")
    flags = Flags(**_client_options(args, None, True, qos), prefix=chosen)
    flags.given["topic"] = given
    # It writes no session option: --no-clean alone keeps one, for a day.
    flags.clean = flags.given["clean"] is not False
    flags.properties = _session(flags.clean)
    return flags


def _session(clean):
    """MQTT 5 ends a session with its connection unless CONNECT says how long to keep it: with --no-clean, a day."""
    if clean:
        return None
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 86400
    return properties


def announcement(device):
    """What a device announces (lib/discovery/device.ts): its topics, states, configs, and a removal to make once."""
    home = f"{device.base}/{device.node_id}"
    availability = f"{home}/availability"
    dev = {"ids": [device.node_id], "name": device.device_name}
    shared = {"availability_topic": availability, "qos": 1}

    def options(component):
        platform = "light" if component == "light" else "sensor"
        unique_id = f"{device.node_id}_{component}"
        common = {"name": component, "unique_id": unique_id, "default_entity_id": f"{platform}.{unique_id}",
                  "state_topic": f"{home}/{component}"}
        if component == "light":
            return platform, {**common, "command_topic": f"{home}/light/set", "payload_on": device.payload_on,
                              "payload_off": device.payload_off}
        return platform, {**common, "device_class": "temperature", "unit_of_measurement": "°C"}

    def cmps(names):
        return {c: {"p": options(c)[0], **options(c)[1]} for c in names}

    def device_config(components):
        return json.dumps({"dev": dev, "o": ORIGIN, "cmps": components, **shared}, ensure_ascii=False, separators=(",", ":"))

    device_topic = f"{device.prefix}/device/{device.node_id}/config"
    component_topic = lambda c: f"{device.prefix}/{options(c)[0]}/{device.node_id}/{c}/config"  # noqa: E731
    configs = {}
    if device.per_component:
        for c in device.components:
            configs[component_topic(c)] = json.dumps({**options(c)[1], "dev": dev, "o": ORIGIN, **shared},
                                                     ensure_ascii=False, separators=(",", ":"))
    else:
        configs[device_topic] = device_config(cmps(device.components))
    removal = []
    if device.drop:
        gone, platform = device.drop, options(device.drop)[0]
        if device.per_component:
            removal.append((component_topic(gone), "", '""'))
        else:
            removal.append((device_topic, device_config({**cmps(device.components), gone: {"p": platform}}),
                            f'its config with "{gone}": {{"p": "{platform}"}}'))
        removal.append((f"{home}/{gone}", "", '""'))
    states = {f"{home}/{c}": device.state if c == "light" else device.temperature for c in device.components}
    light = SimpleNamespace(state_topic=f"{home}/light", command_topic=f"{home}/light/set", on=device.payload_on,
                            off=device.payload_off) if "light" in device.components else None
    return SimpleNamespace(availability=availability, status=status_topic(device.prefix), light=light, states=states,
                           removal=removal, configs=configs)


class Discoveries:
    """What Home Assistant keeps of discovery, without the MQTT calls (lib/discovery/home-assistant.ts's Discoveries).

    read() turns each message into news: topics to stop following, lines to print, topics to follow.
    """

    def __init__(self, prefix, topic_filter):
        self.prefix, self.filter = prefix, topic_filter
        self.configs = {}  # config topic -> {"entity": e} or {"device": d, "entities": {id: e}}
        self.last_config = {}  # config topic -> last payload
        self.last = {}  # followed topic -> (payload, seq)
        self.seq = 0
        self.said = {}  # entity key -> "online", "offline" or "unknown"

    def entities(self):
        found = []
        for topic, known in self.configs.items():
            if "entity" in known:
                found.append((topic, known["entity"]))
            else:
                found.extend((f"{topic} {cid}", e) for cid, e in known["entities"].items())
        return found

    def followed(self):
        """Every topic the entities report on, availability before state, each once."""
        every = [e for _, e in self.entities()]
        topics = [a["topic"] for e in every for a in e["availability"]] + [e["state_topic"] for e in every if e["state_topic"]]
        return list(dict.fromkeys(topics))

    def read(self, topic, payload, retain):
        news = SimpleNamespace(unfollow=[], lines=[], follow=[])
        if topic == status_topic(self.prefix):
            return news  # Home Assistant's own birth and will
        retained = " (retained)" if retain else ""
        if self._users(topic):
            return self._reading(topic, payload, retained, news)
        if not topic_matches(self.filter, topic):
            return news  # a topic left a moment ago
        at = parse_config_topic(self.prefix, topic)
        if at is None:
            news.lines.append(f"{topic} {payload or '(empty)'}{retained}")
            return news
        if isinstance(at, str):
            news.lines.append(f"ignored {topic}: {at}")
            return news
        if self.last_config.get(topic) == payload:
            return news
        self.last_config[topic] = payload
        before = set(self.followed())
        if payload == "":
            self._remove_all(topic, news)
        elif at["component"] == "device":
            self._read_device(topic, at, payload, retained, news)
        else:
            self._read_component(topic, at, payload, retained, news)
        return self._settle(before, news)

    def reachable(self, entity):
        """online, offline or unknown, as the entity's availability topics and availability_mode say."""
        if not entity["availability"]:
            return "online"
        heard = []
        for a in entity["availability"]:
            payload, seq = self.last.get(a["topic"], (None, -1))
            said = "online" if payload == a["online"] else "offline" if payload == a["offline"] else None
            if said:
                heard.append((seq, said))
        says = lambda word: sum(1 for _, s in heard if s == word)  # noqa: E731
        count = len(entity["availability"])
        if entity["availability_mode"] == "latest":
            return max(heard)[1] if heard else "unknown"
        if entity["availability_mode"] == "all":
            return "offline" if says("offline") else "online" if says("online") == count else "unknown"
        return "online" if says("online") else "offline" if says("offline") == count else "unknown"

    def _reading(self, topic, payload, retained, news):
        if payload == "" or self.last.get(topic, (None,))[0] == payload:
            return news
        self.seq += 1
        self.last[topic] = (payload, self.seq)
        for key, e in self._users(topic):
            if e["state_topic"] == topic:
                news.lines.append(_state_line(e, payload, retained))
            a = next((a for a in e["availability"] if a["topic"] == topic), None)
            if a is None:
                continue
            if payload not in (a["online"], a["offline"]):
                news.lines.append(f"{e['name']} sent {json.dumps(payload)} on {topic}, neither {json.dumps(a['online'])} "
                                  f"nor {json.dumps(a['offline'])}")
                continue
            now = self.reachable(e)
            if now == "unknown" or now == self.said.get(key, "unknown"):
                continue
            self.said[key] = now
            news.lines.append(f"{e['name']} is {now}{retained}")
        return news

    def _read_component(self, topic, at, payload, retained, news):
        config = parse_component_config(at, payload)
        if isinstance(config, str):
            news.lines.append(f"ignored {topic}: {config}")
            return
        entity, notes = config
        news.lines.extend(f"{topic}: {note}" for note in notes)
        old = self.configs.get(topic, {}).get("entity")
        twin = self._twin(entity, topic)
        if twin:
            news.lines.append(f"ignored {topic}: {twin}")
            return
        if old == entity:
            return
        self.configs[topic] = {"entity": entity}
        news.lines.append(f"{'updated' if old else 'discovered'} {_describe(entity)}{retained}")

    def _read_device(self, topic, at, payload, retained, news):
        config = parse_device_config(at, payload)
        if isinstance(config, str):
            news.lines.append(f"ignored {topic}: {config}")
            return
        value, notes = config
        before = self.configs.get(topic) if "device" in self.configs.get(topic, {}) else None
        device, origin = value["device"], value["origin"]
        described = f"device {at['object_id']} \"{device.get('name', at['object_id'])}\" from {_origin(origin)}"
        if not before:
            news.lines.append(f"discovered {described}{retained}")
        elif [device, origin] != [before["device"]["device"], before["device"]["origin"]]:
            news.lines.append(f"updated {described}")
        news.lines.extend(f"{topic}: {note}" for note in notes)
        entities = dict(before["entities"]) if before else {}
        for cid, component in value["components"].items():
            old = entities.get(cid)
            if "problem" in component:
                news.lines.append(f"ignored component {cid} of {topic}: {component['problem']}")
            elif "removed" in component:
                if old:
                    news.lines.append(f"removed {_describe(old)}")
                else:
                    news.lines.append(f"ignored component {cid} of {topic}: {{\"p\": \"{component['removed']}\"}} removes a "
                                      "component, and none was discovered there")
                entities.pop(cid, None)
            elif old != component["entity"]:
                twin = self._twin(component["entity"], topic)
                if twin:
                    news.lines.append(f"ignored component {cid} of {topic}: {twin}")
                else:
                    entities[cid] = component["entity"]
                    news.lines.append(f"{'updated' if old else 'discovered'} {_describe(component['entity'])}{retained}")
        for cid, e in entities.items():
            if cid not in value["components"]:
                news.lines.append(f"kept {_describe(e)}: left out of {topic}, but not removed first with {{\"p\": \"{e['platform']}\"}}")
        self.configs[topic] = {"device": value, "entities": entities}

    def _remove_all(self, topic, news):
        known = self.configs.pop(topic, None)
        if not known:
            news.lines.append(f"ignored {topic}: an empty config, but nothing was discovered there")
        elif "entity" in known:
            news.lines.append(f"removed {_describe(known['entity'])}")
        else:
            news.lines.extend(f"removed {_describe(e)}" for e in known["entities"].values())
            object_id = topic.split("/")[-2]
            news.lines.append(f"removed device {object_id} \"{known['device']['device'].get('name', object_id)}\"")

    def _twin(self, entity, topic):
        if entity["unique_id"] is None:
            return None
        other = next((key for key, e in self.entities() if e["unique_id"] == entity["unique_id"]
                      and key != topic and not key.startswith(f"{topic} ")), None)
        return other and f"unique_id {json.dumps(entity['unique_id'])} is already used by {other.split(' ')[0]}"

    def _settle(self, before, news):
        now = self.followed()
        for t in before:
            if t not in now:
                self.last.pop(t, None)
                if not topic_matches(self.filter, t):
                    news.unfollow.append(t)
        keys = {key for key, _ in self.entities()}
        self.said = {key: said for key, said in self.said.items() if key in keys}
        news.follow = [t for t in now if t not in before and not topic_matches(self.filter, t)]
        return news

    def _users(self, topic):
        return [(key, e) for key, e in self.entities()
                if e["state_topic"] == topic or any(a["topic"] == topic for a in e["availability"])]


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


def parse_component_config(at, payload):
    """(entity, notes) from the config of one component, or a string that says what is wrong with it."""
    raw = _parse_json(payload)
    if isinstance(raw, str):
        return raw
    notes = []
    config = _expand(raw, ENTITY_KEYS, _KNOWN_ENTITY, "", notes)
    device = None
    if "device" in config:
        device = _parse_device(config["device"], notes)
        if isinstance(device, str):
            return device
    if "origin" in config:
        origin = _parse_origin(config["origin"], notes)
        if isinstance(origin, str):
            return origin
    path = at["object_id"] if at["node_id"] is None else f"{at['node_id']}/{at['object_id']}"
    entity = _parse_entity(at["component"], path, config, device, notes)
    return entity if isinstance(entity, str) else (entity, notes)


def parse_device_config(at, payload):
    """({"device", "origin", "components"}, notes) from a device config, or a string that says what is wrong."""
    raw = _parse_json(payload)
    if isinstance(raw, str):
        return raw
    notes = []
    root = _expand(raw, ENTITY_KEYS, _KNOWN_ENTITY, "", notes)
    if "device" not in root:
        return 'a device config needs "device" ("dev"), with its "identifiers"'
    if "origin" not in root:
        return 'a device config needs "origin" ("o"), with the "name" of the software that sent it'
    if "components" not in root:
        return 'a device config needs "components" ("cmps"), each with its "platform" ("p")'
    device = _parse_device(root["device"], notes)
    if isinstance(device, str):
        return device
    origin = _parse_origin(root["origin"], notes)
    if isinstance(origin, str):
        return origin
    if not isinstance(root["components"], dict):
        return f'"components" must be an object of components by id, not {_kind(root["components"])}'
    components = {}
    for cid, raw_component in root["components"].items():
        if not isinstance(raw_component, dict):
            components[cid] = {"problem": f'a component must be an object with its "platform" ("p"), not {_kind(raw_component)}'}
            continue
        own = []
        config = _expand(raw_component, ENTITY_KEYS, _KNOWN_ENTITY, root.get("~") if isinstance(root.get("~"), str) else "", own)
        notes.extend(f"component {cid}: {note}" for note in own)
        platform = config.pop("platform", None)
        if not isinstance(platform, str) or platform == "":
            components[cid] = {"problem": 'a component needs its "platform" ("p"), such as "light" or "sensor"'}
        elif not config:
            components[cid] = {"removed": platform}
        elif "unique_id" not in config:
            components[cid] = {"problem": 'a component of a device config needs "unique_id" ("uniq_id")'}
        else:
            for key in SHARED:
                if key not in config and key in root:
                    config[key] = root[key]
            entity = _parse_entity(platform, f"{at['object_id']}/{cid}", config, device, notes)
            components[cid] = {"problem": entity} if isinstance(entity, str) else {"entity": entity}
    return {"device": device, "origin": origin, "components": components}, notes


def _parse_json(payload):
    try:
        raw = json.loads(payload)
    except ValueError:
        return f"not JSON ({payload[:40] + '...' if len(payload) > 40 else payload})"
    if not isinstance(raw, dict):
        return f"the config must be a JSON object, not {_kind(raw)}"
    return raw


def _parse_device(raw, notes):
    if not isinstance(raw, dict):
        return f'"device" must be an object, not {_kind(raw)}'
    device = _expand(raw, DEVICE_KEYS, _KNOWN_DEVICE, "", notes, "device")
    if "identifiers" not in device and "connections" not in device:
        return '"device" needs "identifiers" (or "connections") to tell one device from another'
    ids = device.get("identifiers", [])
    ids = [ids] if isinstance(ids, str) else ids
    if not isinstance(ids, list) or any(not isinstance(i, str) for i in ids):
        return '"identifiers" of "device" must be a string or a list of strings'
    if "name" in device and not isinstance(device["name"], str):
        return f'"name" of "device" must be a string, not {_kind(device["name"])}'
    return {"identifiers": ids, **({"name": device["name"]} if "name" in device else {})}


def _parse_origin(raw, notes):
    if not isinstance(raw, dict):
        return f'"origin" must be an object, not {_kind(raw)}'
    origin = _expand(raw, ORIGIN_KEYS, _KNOWN_ORIGIN, "", notes, "origin")
    if not isinstance(origin.get("name"), str):
        return '"origin" needs the "name" of the software that sent the config'
    for key in ("sw_version", "support_url"):
        if key in origin and not isinstance(origin[key], str):
            return f'"{key}" of "origin" must be a string, not {_kind(origin[key])}'
    return {"name": origin["name"], **({"sw": origin["sw_version"]} if "sw_version" in origin else {}),
            **({"url": origin["support_url"]} if "support_url" in origin else {})}


def _parse_entity(platform, path, config, device, notes):
    required = REQUIRED.get(platform)
    if required and required[0] not in config:
        return f'a {platform} needs "{required[0]}", {required[1]}'
    for key in ("unique_id", "default_entity_id", "unit_of_measurement", "payload_on", "payload_off", "payload_available",
                "payload_not_available"):
        if key in config and not isinstance(config[key], str):
            return f'"{key}" must be a string, not {_kind(config[key])}'
    if config.get("name") is not None and not isinstance(config["name"], str):
        return f'"name" must be a string, or null for the device\'s name alone, not {_kind(config["name"])}'
    for key in ("state_topic", "command_topic", "availability_topic"):
        problem = _topic_problem(config[key]) if key in config else None
        if problem:
            return f'"{key}" {problem}'
    qos = config.get("qos", 0)
    if qos not in (0, 1, 2) or isinstance(qos, bool):
        return f'"qos" must be 0, 1 or 2, not {json.dumps(qos)}'
    if "object_id" in config:
        notes.append(f'"object_id" stopped working in Home Assistant 2026.4; "default_entity_id": "{platform}.<id>" took its place')
    if isinstance(config.get("default_entity_id"), str) and not config["default_entity_id"].startswith(f"{platform}."):
        notes.append(f'"default_entity_id" {json.dumps(config["default_entity_id"])} should start with "{platform}.", its platform')
    availability = _parse_availability(config)
    if isinstance(availability, str):
        return availability
    own = config["name"] if "name" in config else f"MQTT {humanise(platform)}"
    name = " ".join(part for part in ((device or {}).get("name"), own) if part is not None) or humanise(platform)
    on_off = platform in ON_OFF
    return {"platform": platform, "path": path, "name": name, "unique_id": config.get("unique_id"),
            "state_topic": config.get("state_topic"), "command_topic": config.get("command_topic"),
            "payload_on": config.get("payload_on", "ON") if on_off else "ON",
            "payload_off": config.get("payload_off", "OFF") if on_off else "OFF",
            "unit": config.get("unit_of_measurement"), "qos": qos, **availability, "device": device}


def _parse_availability(config):
    if "availability" in config and "availability_topic" in config:
        return '"availability" and "availability_topic" must not be used together'
    mode = config.get("availability_mode", "latest")
    if mode not in ("all", "any", "latest"):
        return f'"availability_mode" must be "all", "any" or "latest", not {json.dumps(mode)}'
    online = config.get("payload_available", "online")
    offline = config.get("payload_not_available", "offline")
    if "availability_topic" in config:
        return {"availability": [{"topic": config["availability_topic"], "online": online, "offline": offline}], "availability_mode": mode}
    if "availability" not in config:
        return {"availability": [], "availability_mode": mode}
    entries = config["availability"] if isinstance(config["availability"], list) else [None]
    availability = []
    for entry in entries:
        if not isinstance(entry, dict) or "topic" not in entry:
            return '"availability" must be a list of objects, each with a "topic"'
        problem = _topic_problem(entry["topic"])
        if problem:
            return f'the "topic" of an "availability" entry {problem}'
        availability.append({"topic": entry["topic"],
                             "online": entry["payload_available"] if isinstance(entry.get("payload_available"), str) else online,
                             "offline": entry["payload_not_available"] if isinstance(entry.get("payload_not_available"), str) else offline})
    return {"availability": availability, "availability_mode": mode}


def _expand(obj, names, known, inherited, notes, within=None):
    """Full key names, topics with the ~ base put in; a key Home Assistant knows for no component is noted."""
    base = obj["~"] if isinstance(obj.get("~"), str) else inherited
    expanded = {}
    where = f' in "{within}"' if within else ""
    for key, value in obj.items():
        full = names.get(key, key)
        if full not in known:
            notes.append(f"unknown key {json.dumps(key)}{where}, ignored as Home Assistant does")
        expanded[full] = _with_base(value, base) if full.endswith("_topic") else value
    if isinstance(expanded.get("availability"), list):
        entries = []
        for entry in expanded["availability"]:
            if isinstance(entry, dict):
                entry = _expand(entry, ENTITY_KEYS, _KNOWN_ENTITY, base, notes, "availability")
                if "topic" in entry:
                    entry["topic"] = _with_base(entry["topic"], base)
            entries.append(entry)
        expanded["availability"] = entries
    return expanded


def _with_base(topic, base):
    if not isinstance(topic, str) or not base:
        return topic
    return base + topic[1:] if topic.startswith("~") else topic[:-1] + base if topic.endswith("~") else topic


def _describe(entity):
    return f"{entity['platform']} {entity['path']} \"{entity['name']}\""


def _origin(origin):
    return f"{origin['name']} {origin['sw']}" if "sw" in origin else origin["name"]


def _state_line(entity, payload, retained):
    if entity["platform"] in ON_OFF and payload not in (entity["payload_on"], entity["payload_off"]):
        return (f"{entity['name']} sent {json.dumps(payload)} on {entity['state_topic']}, neither "
                f"{json.dumps(entity['payload_on'])} nor {json.dumps(entity['payload_off'])}")
    return f"{entity['name']} state {payload}{' ' + entity['unit'] if entity['unit'] else ''}{retained}"


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


def _component(flag, name):
    if name not in COMPONENTS:
        fail(f"{flag} takes {' and '.join(COMPONENTS)}, not {json.dumps(name)}")
    return name


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


def humanise(node_id):
    words = re.sub(r"[_-]+", " ", node_id)
    return words[:1].upper() + words[1:]
