// Every experiment, in the order the article tells them and then the six beyond it: what the docs
// quote, and, run directly (npm run demo), the whole talk in one command.
import { isMain } from '../lib/cli.ts'
import { basicPubsub } from './basic-pubsub.ts'
import { cluster } from './cluster.ts'
import { discovery } from './discovery.ts'
import { ephemeral } from './ephemeral.ts'
import { mqtt5 } from './mqtt5.ts'
import { persistence } from './persistence.ts'
import { retained } from './retained.ts'
import { security } from './security.ts'
import { wildcards } from './wildcards.ts'
import { wire } from './wire.ts'
import { show } from './stage/show.ts'
import type { Scenario } from './stage/stage.ts'
import { transports } from './transports.ts'

export const scenarios: Scenario[] = [
  basicPubsub,
  ephemeral,
  retained,
  wildcards,
  discovery,
  wire,
  transports,
  persistence,
  mqtt5,
  cluster,
  security,
]

if (isMain(import.meta.url)) await show(...scenarios)
