"""Topic names and filters checked as MQTT 3.1.1 section 4.7 defines them, in the words of lib/topics.ts.

paho-mqtt refuses some bad topics with an exception and sends others to the broker, which then drops
the connection; checked here first, a learner reads the reason instead.
"""


def topic_name_problem(topic):
    """Why a topic name (what PUBLISH carries) is invalid, or None."""
    if topic == "":
        return "a topic name must be at least one character long (MQTT 3.1.1 §4.7.3)"
    if "+" in topic or "#" in topic:
        return ("a topic name must not contain the wildcards + or # (MQTT 3.1.1 §4.7.1); "
                "publish to a concrete topic such as home/bedroom/light")
    return _common_problem(topic)


def topic_filter_problem(topic_filter):
    """Why a topic filter (what SUBSCRIBE carries) is invalid, or None."""
    if topic_filter == "":
        return "a topic filter must be at least one character long (MQTT 3.1.1 §4.7.3)"
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return "# must fill a whole level and be the last one, as in home/# (MQTT 3.1.1 §4.7.1.2)"
        if "+" in level and level != "+":
            return "+ must fill a whole level, as in home/+/light (MQTT 3.1.1 §4.7.1.3)"
    return _common_problem(topic_filter)


def empty_level_note(topic):
    """What a topic that starts or ends with / means: an empty level, so another topic. Or None."""
    where = " and ".join(w for w, yes in (("starts", topic.startswith("/")), ("ends", topic.endswith("/"))) if yes)
    if not where or topic == "/":
        return None
    return f"{topic} {where} with /, so it has an empty level there: it is not the same topic as {topic.strip('/')}"


def topic_matches(topic_filter, topic):
    """Whether a filter matches a topic name: + one level, # the parent and every level below."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f, t = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(f):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(f) == len(t)


def _common_problem(topic):
    if "\u0000" in topic:
        return "a topic must not contain the null character U+0000 (MQTT 3.1.1 §4.7.3)"
    if len(topic.encode()) > 65535:
        return "a topic must not be longer than 65535 bytes (MQTT 3.1.1 §4.7.3)"
    return None
