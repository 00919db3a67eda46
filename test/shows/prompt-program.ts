// A program that prompts the way a step-by-step show does (scenarios/stage/terminal.ts), driven by
// keys, for test/shows/show-terminal.test.ts: it says "type now"; on "p" it prompts; on "l", while
// the prompt waits, it prints a line of output; when Enter answers the prompt it says so and exits.
import { Terminal } from '../../scenarios/stage/terminal.ts'

const term = new Terminal({ keys: true })
term.print({ lead: '', text: 'type now' })
process.stdin.on('data', (keys: Buffer) => {
  if (keys.includes('p')) void prompt()
  if (keys.includes('l'))
    term.print({ lead: '  [late] ', text: 'a line printed while the prompt waits' })
})

async function prompt(): Promise<void> {
  await term.enter('Enter: step 2, go on')
  term.print({ lead: '', text: 'Enter answered the prompt' })
  term.release()
  process.exit(0)
}
