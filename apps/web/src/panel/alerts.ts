import type { Alert } from '@skyline/schemas'
import { ApiError, ackAlert } from '../api.ts'
import { clockTime } from '../format.ts'
import type { FleetStore } from '../store.ts'

/** How long the notice of a new alert stays, ms. */
const NOTICE_MS = 6000

/**
 * The alerts panel (issue 18): the store's alerts not resolved, open ones first, newest
 * first, each with its kind, severity, subject, fleet, opening time and facts in short.
 * An operator acknowledges one (POST /api/alerts/{id}/ack); the live stream's change then
 * redraws it, so the list has one source. A resolved alert leaves the list. A new alert is
 * announced by a short notice (`role="status"`) that goes by itself.
 */
export class AlertsPanel {
  /** Whether the token may acknowledge: set once GET /api/auth/me answers. */
  private operates = false
  /** Alerts whose acknowledgement is on its way. */
  private readonly acking = new Set<string>()
  private noticeTimer: ReturnType<typeof setTimeout> | undefined

  constructor(
    private readonly el: {
      list: HTMLElement
      count: HTMLElement
      error: HTMLElement
      notice: HTMLElement
    },
    private readonly store: FleetStore,
    /** Selects a drone by its store key (`fleet/id`). */
    private readonly selectDrone: (key: string) => void,
  ) {}

  setOperates(operates: boolean): void {
    this.operates = operates
    this.update()
  }

  /** Redraws the list (alerts are few: the whole list, each time they change). */
  update(): void {
    const alerts = this.store.alertList()
    const open = alerts.filter((a) => a.state === 'open').length
    this.el.count.textContent = open === 0 ? '' : String(open)
    if (alerts.length === 0) {
      const empty = document.createElement('li')
      empty.className = 'muted'
      empty.textContent = 'No alerts.'
      this.el.list.replaceChildren(empty)
      return
    }
    this.el.list.replaceChildren(...alerts.map((a) => this.row(a)))
  }

  /** Announces alerts just opened. */
  announce(opened: Alert[]): void {
    if (opened.length === 0) return
    const [first] = opened
    this.el.notice.textContent =
      opened.length === 1 && first !== undefined
        ? `New alert: ${kindText(first)} · ${subjectText(first)} (${first.fleetId})`
        : `${opened.length} new alerts`
    this.el.notice.hidden = false
    clearTimeout(this.noticeTimer)
    this.noticeTimer = setTimeout(() => (this.el.notice.hidden = true), NOTICE_MS)
  }

  private row(a: Alert): HTMLElement {
    const li = document.createElement('li')
    li.className = `alert alert-${a.state}`
    li.dataset.alert = a.id
    li.dataset.state = a.state

    const head = document.createElement('div')
    head.className = 'alert-head'
    const severity = span(`alert-severity severity-${a.severity}`, a.severity)
    head.append(severity, span('alert-kind', kindText(a)), span('muted', clockTime(a.openedAt)))

    const subject = document.createElement('div')
    subject.className = 'alert-subject'
    const { droneId, stationId, deliveryId } = a.subject
    if (droneId !== undefined) {
      const drone = document.createElement('button')
      drone.type = 'button'
      drone.className = 'link'
      drone.textContent = `drone ${droneId}`
      drone.addEventListener('click', () => this.selectDrone(`${a.fleetId}/${droneId}`))
      subject.append(drone, ' · ')
    }
    if (stationId !== undefined) subject.append(`station ${stationId} · `)
    if (deliveryId !== undefined) subject.append(`delivery ${deliveryId} · `)
    subject.append(span('muted', a.fleetId))

    const facts = span('alert-facts muted', factsText(a))
    li.append(head, subject, facts)

    if (a.state === 'acknowledged') {
      li.append(
        span(
          'alert-ack muted',
          `acknowledged${a.acknowledgedBy === null ? '' : ` by ${a.acknowledgedBy}`} ${clockTime(a.acknowledgedAt)}`,
        ),
      )
    } else if (this.operates) {
      const ack = document.createElement('button')
      ack.type = 'button'
      ack.textContent = 'Acknowledge'
      ack.disabled = this.acking.has(a.id)
      ack.addEventListener('click', () => void this.acknowledge(a.id))
      li.append(ack)
    }
    return li
  }

  /** Its row changes when the live stream tells the acknowledgement, not on the answer. */
  private async acknowledge(id: string): Promise<void> {
    this.acking.add(id)
    this.el.error.textContent = ''
    this.update()
    try {
      await ackAlert(id)
    } catch (err) {
      this.el.error.textContent =
        err instanceof ApiError ? `${err.code}: ${err.message}` : String(err)
    } finally {
      this.acking.delete(id)
      this.update()
    }
  }
}

function span(className: string, text: string): HTMLSpanElement {
  const s = document.createElement('span')
  if (className !== '') s.className = className
  s.textContent = text
  return s
}

const kindText = (a: Alert): string => a.kind.replace(/_/g, ' ')

/** What it is about, `drone d1 · delivery …` (a zone is named by the facts instead). */
function subjectText(a: Alert): string {
  const { droneId, stationId, deliveryId } = a.subject
  return [
    droneId && `drone ${droneId}`,
    stationId && `station ${stationId}`,
    deliveryId && `delivery ${deliveryId}`,
  ]
    .filter(Boolean)
    .join(' · ')
}

/** The facts that matter, by kind (ARCHITECTURE.md "Alerts": `facts` by kind). */
function factsText(a: Alert): string {
  const f = a.facts
  const num = (k: string) => (typeof f[k] === 'number' ? Math.round(f[k]) : '?')
  const str = (k: string) => (typeof f[k] === 'string' ? f[k] : '?')
  switch (a.kind) {
    case 'battery_low':
      return `battery ${num('batteryPct')}% (threshold ${num('thresholdPct')}%)`
    case 'geofence_breach':
      return `inside ${str('zoneKind') === 'no_fly' ? 'no-fly zone' : 'area'} ${str('zoneName')}`
    case 'drone_lost':
      return f.online === false
        ? `offline${typeof f.offlineReason === 'string' ? ` (${f.offlineReason})` : ''}`
        : `not heard since ${typeof f.lastSeenAt === 'string' ? clockTime(f.lastSeenAt) : '?'}`
    case 'station_offline':
      return `offline since ${typeof f.offlineSince === 'string' ? clockTime(f.offlineSince) : '?'}`
    case 'route_blocked': {
      const zones = Array.isArray(f.zones) ? (f.zones as { name?: string }[]) : []
      return `route ${str('pickupStationId')} → ${str('dropoffStationId')} crosses ${zones.map((z) => z.name ?? '?').join(', ')}`
    }
    case 'delivery_late':
      return 'late'
  }
}
