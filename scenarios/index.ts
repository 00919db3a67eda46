// Every experiment, in the order the article tells them: what `npm run demo` plays and the docs quote.
import { basicPubsub } from './basic-pubsub.ts'
import { ephemeral } from './ephemeral.ts'
import { retained } from './retained.ts'
import { wildcards } from './wildcards.ts'
import type { Scenario } from './stage.ts'
export const scenarios: Scenario[] = [basicPubsub, ephemeral, retained, wildcards]
