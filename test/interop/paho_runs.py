#!/usr/bin/env python3
"""Runs paho_publish_and_quit.py many times, each run a process of its own, as a reader's runs are; but
forked from this one once what the publisher imports is loaded, so a run costs a fork, not the start
of a Python (a third of the CPU). Each child runs the publisher's file as `python3
paho_publish_and_quit.py HOST PORT TOPIC "run N"` would: it connects, publishes "run N" and its file
ends; then the process exits and the kernel closes its connection, as it does when the script ends.
The A1 tests run it and count what a subscriber receives.

  paho_runs.py RUNS AT_ONCE HOST PORT TOPIC

Exits 1, with one line, if a run does not exit 0.
"""
import argparse  # noqa: F401 (what the publisher imports, loaded once here for every run)
import gc
import os
import runpy
import sys

import paho.mqtt.client  # noqa: F401

PUBLISHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "paho_publish_and_quit.py")

runs, at_once = int(sys.argv[1]), int(sys.argv[2])
host, port, topic = sys.argv[3], sys.argv[4], sys.argv[5]
running = set()
failed = []


def reap():
    pid, status = os.wait()
    running.discard(pid)
    if os.waitstatus_to_exitcode(status) != 0:
        failed.append(os.waitstatus_to_exitcode(status))


# Objects a child only reads are then not copied into it by the garbage collector's visits.
gc.freeze()
for n in range(runs):
    while len(running) >= at_once:
        reap()
    pid = os.fork()
    if pid == 0:
        # The child is the publisher from here on: its file runs as the main program, and when it
        # ends, so does the process. Without the interpreter's tear-down, which in a fork would copy
        # every page it touches: the connection is closed by the kernel as the process exits, either way.
        sys.argv = [PUBLISHER, host, port, topic, f"run {n}"]
        try:
            runpy.run_path(PUBLISHER, run_name="__main__")
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        except BaseException as error:
            print(f"error: the publisher failed: {error}", file=sys.stderr, flush=True)
            code = 1
        os._exit(code)
    running.add(pid)
while running:
    reap()
if failed:
    print(f"error: {len(failed)} of {runs} runs of the publisher exited with {failed[0]}", file=sys.stderr)
    sys.exit(1)
