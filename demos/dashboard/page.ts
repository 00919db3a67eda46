/// <reference lib="dom" />
// The dashboard's page, run in the browser (demos/dashboard/server.ts bundles it with esbuild). It does
// what demos/discovery/subscriber.ts does, with cards instead of lines: it connects to the broker over
// WebSocket with MQTT.js's browser build, subscribes to <prefix>/#, and for every device that announces
// itself there follows its availability and state. A light's card has a switch that publishes ON or
// OFF to the light's command topic. Configs come from any client on the broker, so the page checks
// them with the same code as the listener, and writes what they say with textContent, never as HTML.
import mqtt from 'mqtt'
import { entityPath, parseConfig, parseConfigTopic, type Entity } from '../../lib/discovery.ts'
import { topicMatches } from '../../lib/topics.ts'

// The server writes its settings into two <meta> tags. An empty broker URL means "the broker that
// serves this page", reached at the address the browser used, so a phone finds it too.
const meta = (name: string) => document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content ?? ''
const url = meta('mqtt-url') || `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`
const prefix = meta('discovery-prefix') || 'homeassistant'
const filter = `${prefix}/#`

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const status = byId<HTMLParagraphElement>('status')
const cards = byId<HTMLElement>('devices')
const warningList = byId<HTMLUListElement>('warnings')
const empty = byId<HTMLParagraphElement>('empty')

/** Discovered entities, by config topic. */
const entities = new Map<string, Entity>()
/** What is wrong with the last config published on a topic, by config topic. */
const warnings = new Map<string, string>()
/** The last payload on each followed state or availability topic, and when it came (for availability). */
const latest = new Map<string, { payload: string; seq: number }>()
let seq = 0
/** One card element per config topic, updated in place, so that a switch is never replaced under a finger. */
const cardOf = new Map<string, HTMLElement>()
let cardsMade = 0

// MQTT 5, as Home Assistant speaks it. reconnectPeriod: after a broker restart MQTT.js tries again
// every second, by itself. resubscribe is off because every connection starts from scratch below: the
// retained messages tell the page again what exists, so it never shows a device that a restarted
// broker no longer knows.
const client = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 1000, connectTimeout: 5000, resubscribe: false })
showStatus('connecting', `connecting to ${url}…`)

// A refused CONNECT comes as an error, then a close: the status line keeps the reason.
let lastError = ''
client.on('error', (error) => (lastError = ` (${error.message})`))
client.on('close', () => showStatus('disconnected', `disconnected from ${url}${lastError}; trying again every second…`))
client.on('connect', () => {
  lastError = ''
  entities.clear()
  warnings.clear()
  latest.clear()
  client.subscribe(filter, { qos: 0 })
  showStatus('connected', `connected to ${url}`)
})

client.on('message', (topic, payload) => {
  handle(topic, new TextDecoder().decode(payload))
  render()
})

function handle(topic: string, payload: string): void {
  if (follows(topic)) {
    // An empty payload clears a retained state; it is not a state.
    if (payload === '') latest.delete(topic)
    else latest.set(topic, { payload, seq: ++seq })
    return
  }
  const at = parseConfigTopic(prefix, topic)
  // Under the prefix but not a config (Home Assistant's own homeassistant/status, say): not a device.
  if (at === undefined) return
  if (payload === '') {
    // An empty retained config is how a device is removed.
    warnings.delete(topic)
    forget(topic)
    return
  }
  if ('problem' in at) return void warnings.set(topic, at.problem)
  const config = parseConfig(at.value, payload)
  if ('problem' in config) return void warnings.set(topic, config.problem)
  const entity = config.value
  const twin = [...entities.entries()].find(([t, e]) => t !== topic && e.uniqueId === entity.uniqueId)
  if (twin) return void warnings.set(topic, `unique_id ${JSON.stringify(entity.uniqueId)} is already used by ${twin[0]}`)
  warnings.delete(topic)
  // A device that announces the same config again (after a reconnection, say) changes nothing.
  if (JSON.stringify(entities.get(topic)) === JSON.stringify(entity)) return
  forget(topic)
  entities.set(topic, entity)
  // Each subscription brings the retained availability and state of the topic.
  for (const t of topicsOf(entity)) {
    if (users(t) === 1 && !topicMatches(filter, t)) client.subscribe(t, { qos: 0 })
  }
}

/** Stop following an entity, and unsubscribe from its topics that no other entity uses. */
function forget(configTopic: string): void {
  const entity = entities.get(configTopic)
  if (!entity) return
  entities.delete(configTopic)
  for (const t of topicsOf(entity)) {
    if (users(t) > 0) continue
    latest.delete(t)
    if (!topicMatches(filter, t)) client.unsubscribe(t)
  }
}

function topicsOf(entity: Entity): Set<string> {
  return new Set([...entity.availability.map((a) => a.topic), entity.stateTopic])
}

function users(topic: string): number {
  return [...entities.values()].filter((e) => topicsOf(e).has(topic)).length
}

function follows(topic: string): boolean {
  return users(topic) > 0
}

/**
 * online, offline or unknown. Like Home Assistant's default (availability_mode "latest"), the last
 * message on any of the entity's availability topics decides; an entity without one is always online.
 */
function availabilityOf(entity: Entity): 'online' | 'offline' | 'unknown' {
  if (entity.availability.length === 0) return 'online'
  const heard = entity.availability
    .map((a) => ({ a, last: latest.get(a.topic) }))
    .filter((h) => h.last !== undefined)
    .sort((x, y) => y.last!.seq - x.last!.seq)[0]
  if (!heard) return 'unknown'
  return heard.last!.payload === heard.a.online ? 'online' : heard.last!.payload === heard.a.offline ? 'offline' : 'unknown'
}

function showStatus(state: 'connecting' | 'connected' | 'disconnected', text: string): void {
  status.dataset.state = state
  status.textContent = text
  document.body.classList.toggle('stale', state !== 'connected')
  render()
}

function render(): void {
  for (const [topic, card] of cardOf) {
    if (!entities.has(topic)) {
      card.remove()
      cardOf.delete(topic)
    }
  }
  for (const [topic, entity] of entities) {
    let card = cardOf.get(topic)
    if (!card) {
      card = newCard(topic, entity)
      cards.append(card)
    } else if (hasSwitch(card) !== (entity.commandTopic !== undefined)) {
      // A new config that adds or drops the command topic: the card is made again, in the same place.
      const old = card
      card = newCard(topic, entity)
      old.replaceWith(card)
    }
    cardOf.set(topic, card)
    fillCard(card, entity)
  }
  empty.hidden = entities.size > 0

  warningList.replaceChildren(...[...warnings].map(([topic, problem]) => {
    const item = document.createElement('li')
    item.className = 'warning'
    const where = document.createElement('strong')
    where.textContent = topic
    item.append('⚠ ignored ', where, `: ${problem}`)
    return item
  }))
}

function newCard(topic: string, entity: Entity): HTMLElement {
  const name = element('h2', 'name')
  name.id = `card-${++cardsMade}`
  const card = element('article', 'card',
    element('header', '', name, element('span', 'availability')), element('p', 'kind'), element('p', 'state'))
  card.dataset.topic = topic
  card.setAttribute('aria-labelledby', name.id)
  if (entity.commandTopic !== undefined) {
    const button = element('button', 'switch', element('span', 'track', element('span', 'knob')), element('span', 'switch-label'))
    button.type = 'button'
    button.setAttribute('role', 'switch')
    // Not optimistic: the card changes when the light reports its new state, which is what the audience
    // must see to believe that the light obeyed.
    button.addEventListener('click', () => {
      const entity = entities.get(topic)
      if (!entity?.commandTopic) return
      const on = latest.get(entity.stateTopic)?.payload === 'ON'
      client.publish(entity.commandTopic, on ? 'OFF' : 'ON', { qos: 1 })
    })
    card.append(button)
  }
  return card
}

function hasSwitch(card: HTMLElement): boolean {
  return card.querySelector('.switch') !== null
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, ...children: Node[]): HTMLElementTagNameMap[K] {
  const made = document.createElement(tag)
  if (className) made.className = className
  made.append(...children)
  return made
}

function fillCard(card: HTMLElement, entity: Entity): void {
  const availability = availabilityOf(entity)
  const state = latest.get(entity.stateTopic)?.payload
  card.dataset.availability = availability
  card.querySelector('.name')!.textContent = entity.name
  card.querySelector('.availability')!.textContent = availability
  card.querySelector('.kind')!.textContent = `${entity.component} · ${entityPath(entity)}`
  card.querySelector('.state')!.textContent = state === undefined ? 'no state yet' : `${state}${entity.unit ? ` ${entity.unit}` : ''}`
  const button = card.querySelector<HTMLButtonElement>('.switch')
  if (button) {
    const on = state === 'ON'
    button.setAttribute('aria-checked', String(on))
    button.setAttribute('aria-label', entity.name)
    // A command to a device that is offline, or sent while the page is not connected, would go nowhere.
    button.disabled = !client.connected || availability === 'offline'
    button.querySelector('.switch-label')!.textContent = button.disabled ? 'Unavailable' : on ? 'Turn off' : 'Turn on'
  }
}
