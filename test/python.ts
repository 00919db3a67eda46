// A Python that has paho-mqtt, for the tests that run Python programs: the python3 on PATH, or Debian's
// /usr/bin/python3, where apt installs python3-paho-mqtt (a python3 of pyenv or a venv may lack it).
import { spawnSync } from 'node:child_process'

export const python = ['python3', '/usr/bin/python3'].find((candidate) =>
  spawnSync(candidate, ['-c', 'import paho.mqtt.client'], { stdio: 'ignore' }).status === 0)

/** The title of tests skipped for want of it: one line that says what to install. */
export const NO_PAHO = 'paho-mqtt not installed: apt-get install python3-paho-mqtt (or pip install paho-mqtt) to run these'
