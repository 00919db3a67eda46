// The trace of a play: what the stage view draws as a live sequence diagram on the show's page, and
// what exports as Mermaid for the docs. Lifelines, steps, every MQTT packet between a program and a
// broker (read and written by the bundled broker itself), the broker's own acts, the connections
// refused before MQTT, and the ticks that prove the claims, in the order they happened. The stage
// writes it (./stage.ts: stage.trace, and StageOptions.onTrace as each entry is made); the page and
// the Mermaid export only read it.

/** A new play begins: a show of several experiments sends one per experiment. */
export interface PlayEntry {
  kind: 'play'
  /** The scenario's name (demo:<name>) and title. */
  name: string
  title: string
  /** How many steps it has, for "step 3 of 7". */
  steps: number
  /**
   * Where the packets come from: 'broker', the bundled broker's own record of what it read and
   * wrote; 'programs', what the programs print of themselves (against MQTT_URL, where the broker is
   * not ours), so acknowledgements, pings and the broker's own acts are not seen.
   */
  source: 'broker' | 'programs'
  /** With source 'programs': one sentence for the page, saying what it cannot see. */
  unseen?: string
}

/** A program or a broker, drawn as a lifeline from the point it appears. */
export interface LifelineEntry {
  kind: 'lifeline'
  /** Unique in the play; what PacketEntry.from and .to name. */
  id: string
  /**
   * What the room reads: the show's label for a program ("subscriber-1"), "broker" for a broker.
   */
  label: string
  role: 'program' | 'broker'
  /** The stage's own client (its markers): drawn faintly, as a proof rather than the experiment. */
  stage?: boolean
  /** A program's MQTT client id, where the stage knows it (it gave it, or the broker told it). */
  clientId?: string
}

/** A lifeline ends: its program exited, was stopped or killed, or its broker was. */
export interface EndEntry {
  kind: 'end-of-life'
  id: string
  /** How: 'exit', 'stop' (Ctrl-C, SIGINT), 'kill' (SIGKILL: no goodbye, so a will may follow). */
  how: 'exit' | 'stop' | 'kill'
}

export interface StepEntry {
  kind: 'step'
  number: number
  title: string
}

export type PacketType =
  | 'connect'
  | 'connack'
  | 'publish'
  | 'puback'
  | 'pubrec'
  | 'pubrel'
  | 'pubcomp'
  | 'subscribe'
  | 'suback'
  | 'unsubscribe'
  | 'unsuback'
  | 'pingreq'
  | 'pingresp'
  | 'disconnect'
  | 'auth'

/**
 * One arrow: an MQTT packet from a program to a broker or back (or between two brokers). An entry
 * sent again with the same seq replaces the earlier one: that is how a burst grows its count live.
 */
export interface PacketEntry {
  kind: 'packet'
  /** Its place in the play, from 1: arrows are drawn in this order. */
  seq: number
  /** Lifeline ids. */
  from: string
  to: string
  type: PacketType
  /**
   * What the arrow says, short and readable from the back of a room: `PUBLISH my_topic "on" q1
   * retain`, `CONNACK 0 session present`, `SUBSCRIBE home/# q0`, `PINGREQ`. Payloads are cut or
   * summarized ("config, 412 bytes").
   */
  text: string
  /**
   * The broker acting on its own rather than relaying: 'will', a Last Will it publishes for a
   * client that went without a goodbye; 'retained', a retained message it hands to a new
   * subscriber; 'nobody', a PUBLISH it received that reached no subscriber (drawn ending at the
   * broker).
   */
  act?: 'will' | 'retained' | 'nobody'
  /**
   * How many identical packets in a row this arrow stands for (a burst, drawn "×1000"); 1 usually.
   */
  count: number
  /** Milliseconds since the play began. */
  at: number
}

/**
 * A connection that ended in its TLS handshake, before any MQTT packet (the bundled broker's
 * record tells it: lib/broker/record.ts' RefusalRecord): refused by the broker (plain MQTT on its
 * TLS port, no client certificate) or given up by the program (a certificate it does not trust).
 * Drawn as an arrow from the program to the broker that ends in a refusal mark, with its reason.
 * It is numbered among the packets, so that a tick can stand beside it, and never sent again.
 */
export interface RefusalEntry {
  kind: 'refusal'
  /** Its place among the packets of the play. */
  seq: number
  /**
   * The program's lifeline. A refusal has no client id: it is the program the stage started that
   * connects to that listener's port and that the broker has not told of yet, the first of them.
   */
  from: string
  /** The broker's lifeline. */
  to: string
  /** The listener's URL, as the broker gives it (its port changes from play to play). */
  listener: string
  /** Why, in a few words: "not TLS", "no client certificate", "TLS handshake failed: ...". */
  reason: string
  /** Milliseconds since the play began. */
  at: number
}

/** An expectation met: drawn beside the arrow it proves. */
export interface TickEntry {
  kind: 'tick'
  text: string
  /** The claim it demonstrates (C11), where it demonstrates one. */
  claim?: string
  /**
   * The seq of the packet (or refusal) it stands beside: the last one it is about; absent if none.
   */
  after?: number
}

/** The play ended: every expectation met, or the first that failed. */
export interface ResultEntry {
  kind: 'result'
  ok: boolean
  text: string
}

export type TraceEntry =
  | PlayEntry
  | LifelineEntry
  | EndEntry
  | StepEntry
  | PacketEntry
  | RefusalEntry
  | TickEntry
  | ResultEntry

/**
 * What a PUBLISH carries, whatever its flags: its topic and payload, read from its text; the same
 * for the PUBLISH a program sent and each copy the broker delivers of it, so that a delivery can be
 * matched with the PUBLISH that brought it.
 */
export function publishedMessage(p: PacketEntry): string | undefined {
  if (p.type !== 'publish') return undefined
  return p.text.match(/PUBLISH (\S+ (?:"(?:[^"\\]|\\.)*"|\([^)]*\)))/)?.[1]
}
