// / <reference lib="dom" /> The dashboard's page, run in the browser (demos/dashboard/server.ts
// bundles it with esbuild). It does what demos/discovery/subscriber.ts does, with cards instead of
// lines: it connects to the broker over WebSocket (MQTT 5) with MQTT.js's browser build, subscribes
// to <prefix>/#, and for every entity that a device config or a component's config announces there
// follows its availability and state, one card each. A light's card has a switch that publishes the
// light's payload_on or payload_off to its command topic. Configs come from any client on the
// broker, so the page reads them with the same code as the listener
// (lib/discovery/home-assistant.ts), and writes what they say with textContent, never as HTML.
import mqtt from 'mqtt'
import type { Entity } from '../../lib/discovery/format.ts'
import { Discoveries } from '../../lib/discovery/home-assistant.ts'

// The server writes its settings into two <meta> tags. An empty broker URL means "the broker that
// serves this page", reached at the address the browser used, so a phone finds it too.
const meta = (name: string) =>
  document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content ?? ''
const url =
  meta('mqtt-url') || `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`
const prefix = meta('discovery-prefix') || 'homeassistant'
const filter = `${prefix}/#`

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const status = byId<HTMLParagraphElement>('status')
const cards = byId<HTMLElement>('devices')
const warningList = byId<HTMLUListElement>('warnings')
const empty = byId<HTMLParagraphElement>('empty')

/** Where the page stands: connecting (until the broker's SUBACK), connected, or disconnected. */
let state: 'connecting' | 'connected' | 'disconnected' = 'connecting'
/** What the page discovered since it last connected. */
let discovered = new Discoveries(prefix, filter)
/**
 * One card element per entity, updated in place, so that a switch is never replaced under a finger.
 */
const cardOf = new Map<string, HTMLElement>()
let cardsMade = 0

// reconnectPeriod: after a broker restart MQTT.js tries again every second, by itself. resubscribe
// is off because every connection starts from scratch below: the retained messages tell the page
// again what exists, so it never shows a device that a restarted broker no longer knows. The page
// is a viewer, not a Home Assistant: it sends no birth message, so opening it makes no device
// announce itself.
const client = mqtt.connect(url, {
  protocolVersion: 5,
  reconnectPeriod: 1000,
  connectTimeout: 5000,
  resubscribe: false,
})
showStatus('connecting', `connecting to ${url}…`)

// A refused CONNECT comes as an error, then a close: the status line keeps the reason.
let lastError = ''
/** Counts the connections, so that the SUBACK of one that has ended changes nothing. */
let connections = 0
client.on('error', (error) => (lastError = ` (${error.message})`))
client.on('close', () =>
  showStatus('disconnected', `disconnected from ${url}${lastError}; trying again every second…`),
)
client.on('connect', () => {
  lastError = ''
  const connection = ++connections
  discovered = new Discoveries(prefix, filter)
  showStatus('connecting', `connecting to ${url}…`)
  // Still connecting until the broker has answered the SUBSCRIBE: until then the page knows nothing
  // of what exists, and must not say that there is no device. The broker sends the retained configs
  // it keeps right behind its SUBACK.
  client.subscribe(filter, { qos: 0 }, (error) => {
    if (connection !== connections || !client.connected) return
    if (!error) showStatus('connected', `connected to ${url}`)
    else showStatus('disconnected', `${url} refused to subscribe to ${filter} (${error.message})`)
  })
})

client.on('message', (topic, payload, packet) => {
  const news = discovered.read(topic, new TextDecoder().decode(payload), packet.retain)
  for (const t of news.unfollow) client.unsubscribe(t)
  // Each subscription brings the retained availability and state of the topic.
  for (const t of news.follow) client.subscribe(t, { qos: 0 })
  render()
})

function showStatus(now: typeof state, text: string): void {
  state = now
  status.dataset.state = now
  status.textContent = text
  document.body.classList.toggle('stale', now !== 'connected')
  render()
}

function render(): void {
  const entities = new Map(discovered.entities().map(({ key, entity }) => [key, entity]))
  for (const [key, card] of cardOf) {
    if (!entities.has(key)) {
      card.remove()
      cardOf.delete(key)
    }
  }
  for (const [key, entity] of entities) {
    let card = cardOf.get(key)
    if (!card) {
      card = newCard(key)
      cards.append(card)
    } else if (hasSwitch(card) !== (entity.commandTopic !== undefined)) {
      // A new config that adds or drops the command topic: the card is made again, in the same
      // place.
      const old = card
      card = newCard(key)
      old.replaceWith(card)
    }
    cardOf.set(key, card)
    fillCard(card, entity)
  }
  // "No devices yet" only once the broker has answered; before, or while away, it cannot know.
  empty.hidden = state !== 'connected' || entities.size > 0

  warningList.replaceChildren(
    ...[...discovered.problems].map(([topic, problem]) => {
      const item = document.createElement('li')
      item.className = 'warning'
      const where = document.createElement('strong')
      where.textContent = topic
      item.append('⚠ ignored ', where, `: ${problem}`)
      return item
    }),
  )
}

function newCard(key: string): HTMLElement {
  const name = element('h2', 'name')
  name.id = `card-${++cardsMade}`
  const card = element(
    'article',
    'card',
    element('header', '', name, element('span', 'availability')),
    element('p', 'kind'),
    element('p', 'state'),
  )
  card.dataset.key = key
  card.setAttribute('aria-labelledby', name.id)
  if (entityOf(key)?.commandTopic !== undefined) {
    const button = element(
      'button',
      'switch',
      element('span', 'track', element('span', 'knob')),
      element('span', 'switch-label'),
    )
    button.type = 'button'
    button.setAttribute('role', 'switch')
    // Not optimistic: the card changes when the light reports its new state, which is what the
    // audience must see to believe that the light obeyed. It sends the payloads the config names,
    // at the config's QoS, as Home Assistant does.
    button.addEventListener('click', () => {
      const entity = entityOf(key)
      if (!entity?.commandTopic) return
      const on = discovered.stateOf(entity) === entity.payloadOn
      client.publish(entity.commandTopic, on ? entity.payloadOff : entity.payloadOn, {
        qos: entity.qos,
      })
    })
    card.append(button)
  }
  return card
}

function entityOf(key: string): Entity | undefined {
  return discovered.entities().find((d) => d.key === key)?.entity
}

function hasSwitch(card: HTMLElement): boolean {
  return card.querySelector('.switch') !== null
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  ...children: Node[]
): HTMLElementTagNameMap[K] {
  const made = document.createElement(tag)
  if (className) made.className = className
  made.append(...children)
  return made
}

function fillCard(card: HTMLElement, entity: Entity): void {
  const availability = discovered.reachable(entity)
  const state = discovered.stateOf(entity)
  card.dataset.availability = availability
  card.querySelector('.name')!.textContent = entity.name
  card.querySelector('.availability')!.textContent = availability
  card.querySelector('.kind')!.textContent = `${entity.platform} · ${entity.path}`
  card.querySelector('.state')!.textContent =
    state === undefined ? 'no state yet' : `${state}${entity.unit ? ` ${entity.unit}` : ''}`
  const button = card.querySelector<HTMLButtonElement>('.switch')
  if (button) {
    const on = state === entity.payloadOn
    button.setAttribute('aria-checked', String(on))
    button.setAttribute('aria-label', entity.name)
    // A command to a device that is offline, or sent while the page is not connected, would go
    // nowhere.
    button.disabled = !client.connected || availability === 'offline'
    button.querySelector('.switch-label')!.textContent = button.disabled
      ? 'Unavailable'
      : on
        ? 'Turn off'
        : 'Turn on'
  }
}
