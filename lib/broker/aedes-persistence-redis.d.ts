// aedes-persistence-redis ships no types: it builds, on an ioredis connection, what aedes takes as
// its `persistence` option.
declare module 'aedes-persistence-redis' {
  import type { Redis } from 'ioredis'
  export default function redisPersistence(options: { conn: Redis }): unknown
}
