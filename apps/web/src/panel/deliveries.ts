import type { DeliveryStatus, DeliveryView } from '@skyline/schemas'
import { DELIVERY_STATUSES } from '@skyline/schemas/constants'
import { getDelivery, listDeliveries } from '../api.ts'
import { clockTime } from '../format.ts'
import type { TrackReplay } from '../map/replay.ts'

const PAGE_SIZE = 25
/** The newest page reloads on status changes at most this often, ms. */
const REFRESH_MS = 2_000

/**
 * The deliveries tab: recent deliveries from REST, newest first, a page at a time
 * (the api's cursors; a stack of them goes back), filtered by status. A click
 * replays the delivery's flown track on the map with a time slider.
 */
export class DeliveriesTab {
  /** Cursors of the pages before the current one; the current page's own cursor. */
  private readonly previous: (string | undefined)[] = []
  private cursor: string | undefined
  private next: string | null = null
  /** Numbers the loads: only the latest one's answer is shown. */
  private seq = 0
  private lastLoadAt = 0

  constructor(
    private readonly el: {
      status: HTMLSelectElement
      refresh: HTMLButtonElement
      list: HTMLElement
      newer: HTMLButtonElement
      older: HTMLButtonElement
      replay: HTMLElement
      replayTitle: HTMLElement
      replayClose: HTMLButtonElement
      replayPlay: HTMLButtonElement
      replaySlider: HTMLInputElement
      replayTime: HTMLElement
    },
    private readonly replay: TrackReplay,
    private readonly onError: (message: string) => void,
  ) {
    for (const s of DELIVERY_STATUSES) el.status.add(new Option(s.replace('_', ' '), s))
    el.status.addEventListener('change', () => void this.first())
    el.refresh.addEventListener('click', () => void this.load())
    el.older.addEventListener('click', () => {
      if (this.next === null) return
      this.previous.push(this.cursor)
      this.cursor = this.next
      void this.load()
    })
    el.newer.addEventListener('click', () => {
      if (this.previous.length === 0) return
      this.cursor = this.previous.pop()
      void this.load()
    })
    el.list.addEventListener('click', (e) => {
      const row = (e.target as HTMLElement).closest<HTMLElement>('[data-delivery]')
      if (row?.dataset.delivery !== undefined) void this.show(row.dataset.delivery)
    })
    el.list.addEventListener('keydown', (e) => {
      const row = (e.target as HTMLElement).closest<HTMLElement>('[data-delivery]')
      if ((e.key === 'Enter' || e.key === ' ') && row?.dataset.delivery !== undefined) {
        e.preventDefault()
        void this.show(row.dataset.delivery)
      }
    })
    el.replayClose.addEventListener('click', () => {
      this.replay.clear()
      el.replay.hidden = true
    })
    el.replaySlider.addEventListener('input', () => {
      this.replay.pause()
      el.replayPlay.textContent = 'Play'
      this.replay.seek(Number(el.replaySlider.value))
    })
    el.replayPlay.addEventListener('click', () => {
      if (el.replayPlay.textContent === 'Pause') {
        this.replay.pause()
        el.replayPlay.textContent = 'Play'
        return
      }
      el.replayPlay.textContent = 'Pause'
      this.replay.play(Number(el.replaySlider.value), () => (el.replayPlay.textContent = 'Play'))
    })
  }

  /** Back to the newest page. */
  first(): Promise<void> {
    this.previous.length = 0
    this.cursor = undefined
    return this.load()
  }

  /**
   * A delivery changed status: reloads the page shown if it is the newest (older
   * pages do not move under the reader), at most every REFRESH_MS.
   */
  refreshIfFirst(): void {
    if (this.cursor === undefined && performance.now() - this.lastLoadAt >= REFRESH_MS) {
      void this.load()
    }
  }

  private async load(): Promise<void> {
    const seq = ++this.seq
    this.lastLoadAt = performance.now()
    // No paging while a page is on its way: a double click must not skip one.
    this.el.newer.disabled = this.el.older.disabled = true
    try {
      const page = await listDeliveries({
        status: this.el.status.value as DeliveryStatus | '',
        cursor: this.cursor,
        limit: PAGE_SIZE,
      })
      if (seq !== this.seq) return
      this.next = page.nextCursor
      this.render(page.deliveries)
    } catch (err) {
      if (seq === this.seq) this.onError(`deliveries: ${(err as Error).message}`)
    } finally {
      if (seq === this.seq) {
        this.el.newer.disabled = this.previous.length === 0
        this.el.older.disabled = this.next === null
      }
    }
  }

  private render(deliveries: DeliveryView[]): void {
    const rows = deliveries.map((d) => {
      const tr = document.createElement('tr')
      tr.dataset.delivery = d.id
      tr.tabIndex = 0
      tr.dataset.status = d.status
      const cells = [
        d.id.slice(0, 8),
        d.status.replace('_', ' '),
        d.droneId ?? '—',
        `${d.pickupStationId} → ${d.dropoffStationId}`,
        clockTime(d.requestedAt),
      ]
      for (const text of cells) {
        const td = document.createElement('td')
        td.textContent = text
        tr.append(td)
      }
      tr.title = d.id
      return tr
    })
    if (rows.length === 0) {
      const tr = document.createElement('tr')
      const td = document.createElement('td')
      td.colSpan = 5
      td.className = 'muted'
      td.textContent = 'no deliveries'
      tr.append(td)
      rows.push(tr)
    }
    this.el.list.replaceChildren(...rows)
  }

  private async show(id: string): Promise<void> {
    try {
      const d = await getDelivery(id)
      const { el } = this
      el.replay.hidden = false
      el.replayTitle.textContent = `${d.id.slice(0, 8)} · ${d.droneId ?? 'no drone'} · ${d.status}`
      el.replaySlider.max = String(Math.max(0, d.track.length - 1))
      el.replaySlider.value = '0'
      el.replayPlay.textContent = 'Play'
      el.replayPlay.disabled = d.track.length === 0
      if (d.track.length === 0) el.replayTime.textContent = 'no flown track recorded'
      this.replay.show(d)
    } catch (err) {
      this.onError(`delivery ${id}: ${(err as Error).message}`)
    }
  }

  /** The replay marker moved: the slider and the time follow. */
  moved(index: number, point: { ts: string; speedMps: number; altM: number }, of: number): void {
    this.el.replaySlider.value = String(index)
    this.el.replayTime.textContent = `${clockTime(point.ts)} · ${point.altM.toFixed(0)} m · ${point.speedMps.toFixed(1)} m/s · ${index + 1}/${of}`
  }
}
