// What a room reads (scenarios/stage/view.ts), from events made up for the purpose: a program's
// line about a message comes after its sender's, what arrives while a prompt waits comes with the
// next step, keepalive pings folded, and no process id, temporary path or claim ID in sight unless
// --verbose asks for them.
import { tmpdir } from 'node:os'
import { describe, expect, it } from 'vitest'
import type { Event } from '../../scenarios/stage/scenario.ts'
import type { Piece, Terminal } from '../../scenarios/stage/terminal.ts'
import { View } from '../../scenarios/stage/view.ts'

/** A terminal 80 columns wide that keeps what is printed, one string per piece. */
function fakeTerminal() {
  const printed: string[] = []
  const term = {
    width: 80,
    prompting: false,
    paint: (_code: string, text: string) => text,
    print: (...pieces: Piece[]) => printed.push(...pieces.map((p) => `${p.lead}${p.text}`)),
  }
  return {
    term,
    printed,
    view: (verbose = false) => new View(term as unknown as Terminal, { verbose, from: 1 }),
  }
}

const started = (label: string): Event => ({
  kind: 'command',
  label,
  text: 'npx tsx x.ts',
  id: label,
})
const line = (label: string, text: string): Event => ({
  kind: 'line',
  label,
  text,
  stream: 'stdout',
})

describe('the view a room reads', () => {
  it("prints what a program received after its sender's line, as the broker saw it", () => {
    const { printed, view } = fakeTerminal()
    const v = view()
    for (const e of [
      started('kitchen'),
      started('listener-1'),
      line('broker', 'client kitchen published "online" to home/kitchen/availability (retained)'),
      line('listener-1', 'Kitchen light is online'),
      line('kitchen', 'published "online" to home/kitchen/availability (retained)'),
    ])
      v.event(e)
    expect(printed.slice(-2)).toEqual([
      '  [kitchen] published "online" to home/kitchen/availability (retained)',
      '  [listener-1] Kitchen light is online',
    ])
  })

  it('holds what arrives while a prompt waits for the next step, with pings folded', () => {
    const { term, printed, view } = fakeTerminal()
    const v = view()
    v.event(started('tap'))
    term.prompting = true
    for (let i = 0; i < 3; i++) {
      v.event(line('tap', 'client 1 → broker  PINGREQ       2 bytes: c0 00'))
      v.event(line('tap', 'broker → client 1  PINGRESP      2 bytes: d0 00'))
    }
    const before = printed.length
    term.prompting = false
    v.event({ kind: 'step', number: 4, text: 'Wait' })
    expect(printed.slice(before)).toEqual([
      '',
      'Step 4. Wait',
      '  · 3 keepalive pings while the prompt waited (PINGREQ, PINGRESP); the last one:',
      '  [tap] client 1 → broker  PINGREQ       2 bytes: c0 00',
      '  [tap] broker → client 1  PINGRESP      2 bytes: d0 00',
    ])
  })

  it('names a killed program by its label, shortens temporary paths, keeps claim IDs quiet', () => {
    const { printed, view } = fakeTerminal()
    const v = view()
    const path = `${tmpdir()}/mqtt-by-example-AbC123/broker.sock`
    v.event({ kind: 'command', label: '#', text: `npx tsx x.ts --url mqtt+unix://${path}` })
    v.event({ kind: 'stop', label: '#', signal: 'SIGKILL', pid: 4242 })
    v.event({ kind: 'ok', claim: 'C6', text: 'it connected' })
    expect(printed).toEqual([
      '  [#] $ npx tsx x.ts --url mqtt+unix://<tmp>/broker.sock',
      '  [#] $ kill -KILL <#>',
      '  ✓ it connected',
    ])
  })

  it('--verbose shows the process id, the path and the claim ID', () => {
    const { printed, view } = fakeTerminal()
    const v = view(true)
    v.event({ kind: 'stop', label: 'sensor', signal: 'SIGKILL', pid: 4242 })
    v.event({ kind: 'ok', claim: 'C6', text: 'it connected' })
    expect(printed).toEqual(['  [sensor] $ kill -KILL 4242', '  ✓ it connected (C6)'])
  })
})
