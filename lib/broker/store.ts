// The bundled broker's memory on disk (`npm run broker -- --persist DIR`): retained messages,
// persistent sessions and their queued messages go to a LevelDB database in DIR, so they outlive a
// restart or a crash. Without it the broker keeps them in memory and forgets them when it stops.
import { readdirSync, statSync, type Stats } from 'node:fs'
import { resolve } from 'node:path'

interface Store {
  /** What aedes takes as its `persistence` option. */
  persistence: unknown
  /** Release the database, and with it the directory's LOCK. */
  close(): Promise<void>
}

/**
 * Open (or create) the store in `dir`. Rejects with one line that says what is wrong with the
 * directory and what to do: another running broker holds it, it cannot be written, it is not a
 * store, it is damaged.
 */
export async function openStore(dir: string): Promise<Store> {
  if (dir === '')
    throw new Error(
      '--persist needs a directory, such as ./broker-store (it is created if missing)',
    )
  const path = resolve(dir)
  refuseForeignDirectory(dir, path)
  // Loaded here, by a broker that keeps a store, rather than by every broker as it starts.
  const [{ Level }, { default: levelPersistence }] = await Promise.all([
    import('level'),
    import('aedes-persistence-level'),
  ])
  const db = new Level(path)
  try {
    await db.open()
  } catch (error) {
    throw new Error(openProblem(dir, error))
  }
  return { persistence: levelPersistence(db), close: () => db.close() }
}

/**
 * LevelDB makes its files in any directory it is given. Pointed at a directory full of other things
 * (the project, a home directory) it would scatter them there: refuse a directory that has files
 * but no database. A directory that does not exist yet is created.
 */
function refuseForeignDirectory(dir: string, path: string): void {
  let stats: Stats
  let entries: string[]
  try {
    stats = statSync(path)
    entries = stats.isDirectory() ? readdirSync(path) : []
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return
    throw new Error(persistDirProblem(dir, code, (error as Error).message))
  }
  if (!stats.isDirectory()) throw new Error(persistDirProblem(dir, 'ENOTDIR', ''))
  if (entries.length > 0 && !entries.includes('CURRENT')) {
    throw new Error(
      `--persist ${dir} is not empty and holds no broker store; give it an empty or a new ` +
        `directory`,
    )
  }
}

function openProblem(dir: string, error: unknown): string {
  // abstract-level wraps the reason in `cause`, with a LEVEL_ code of its own or a Node.js errno
  // code.
  const cause = (error as { cause?: Error & { code?: string } }).cause
  return persistDirProblem(dir, cause?.code, cause?.message ?? String(error))
}

function persistDirProblem(dir: string, code: string | undefined, reason: string): string {
  switch (code) {
    case 'LEVEL_LOCKED':
      return (
        `--persist ${dir} is in use by another running broker (it holds the LOCK file); ` +
        `stop that broker, or give another directory`
      )
    case 'EACCES':
    case 'EPERM':
      return (
        `--persist ${dir} cannot be written (permission denied); give a directory you can ` +
        `write to`
      )
    case 'EEXIST':
    case 'ENOTDIR':
      return `--persist ${dir} is not a directory; give it a directory (it is created if missing)`
    case 'LEVEL_CORRUPTION':
    case 'LEVEL_IO_ERROR':
      if (/permission denied/i.test(reason)) return persistDirProblem(dir, 'EACCES', reason)
      return (
        `--persist ${dir} holds a damaged store (${reason}); move it away and start with an ` +
        `empty directory`
      )
    default:
      return `cannot open the store in --persist ${dir}: ${reason}`
  }
}
