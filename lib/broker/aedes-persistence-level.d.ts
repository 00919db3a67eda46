// aedes-persistence-level ships no types: it turns a LevelDB database (package level) into what
// aedes takes as its `persistence` option.
declare module 'aedes-persistence-level' {
  export default function levelPersistence(db: unknown): unknown
}
