// A Python that has paho-mqtt, for the tests that run Python programs: the python3 on PATH, or
// Debian's /usr/bin/python3, where apt installs python3-paho-mqtt (a python3 of pyenv or a venv may
// lack it).
import { $ } from 'zx'

export const python = ['python3', '/usr/bin/python3'].find(
  (candidate) =>
    $.sync({ nothrow: true, quiet: true })`${candidate} -c ${'import paho.mqtt.client'}`
      .exitCode === 0,
)

/** The title of tests skipped for want of it: one line that says what to install. */
export const NO_PAHO =
  'paho-mqtt not installed: apt-get install python3-paho-mqtt (or pip install paho-mqtt) to run ' +
  'these'
