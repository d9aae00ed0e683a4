import { ApiError, createDelivery } from '../api.ts'
import type { FleetStore } from '../store.ts'

/**
 * The dispatch form: pick-up and drop-off stations of a fleet and a payload. Posts a
 * delivery with the page's token (session.ts), which must be a `service` or `admin` one
 * of that fleet; `npm start`'s link carries such a token, so the demo dispatches at once.
 */
export class DispatchForm {
  constructor(
    private readonly el: {
      form: HTMLFormElement
      fleet: HTMLSelectElement
      pickup: HTMLSelectElement
      dropoff: HTMLSelectElement
      payload: HTMLInputElement
      submit: HTMLButtonElement
      result: HTMLElement
    },
    private readonly store: FleetStore,
  ) {
    el.fleet.addEventListener('change', () => this.fillStations())
    el.form.addEventListener('submit', (e) => {
      e.preventDefault()
      void this.submit()
    })
  }

  /** Stations changed: refresh the choices, keeping what was picked. */
  update(): void {
    const fleets = [...new Set([...this.store.stations.values()].map((s) => s.fleetId))].sort()
    replaceOptions(
      this.el.fleet,
      fleets.map((f) => [f, f]),
    )
    this.fillStations()
  }

  private fillStations(): void {
    const fleet = this.el.fleet.value
    const stations = [...this.store.stations.values()]
      .filter((s) => s.fleetId === fleet)
      .sort((a, b) => a.id.localeCompare(b.id, undefined, { numeric: true }))
      .map((s): [string, string] => [s.id, `${s.name} (${s.id})${s.online ? '' : ' — offline'}`])
    replaceOptions(this.el.pickup, stations)
    replaceOptions(this.el.dropoff, stations)
    if (this.el.dropoff.selectedIndex === this.el.pickup.selectedIndex && stations.length > 1) {
      this.el.dropoff.selectedIndex = (this.el.pickup.selectedIndex + 1) % stations.length
    }
  }

  private async submit(): Promise<void> {
    const { el } = this
    if (el.pickup.value === el.dropoff.value) {
      this.say('pick-up and drop-off must differ', true)
      return
    }
    el.submit.disabled = true
    try {
      const d = await createDelivery({
        fleet: el.fleet.value,
        pickupStationId: el.pickup.value,
        dropoffStationId: el.dropoff.value,
        payloadKg: Number(el.payload.value),
      })
      this.say(`delivery ${d.id.slice(0, 8)} requested`, false)
    } catch (err) {
      const message = err instanceof ApiError ? `${err.code}: ${err.message}` : String(err)
      this.say(message, true)
    } finally {
      el.submit.disabled = false
    }
  }

  private say(text: string, error: boolean): void {
    this.el.result.textContent = text
    this.el.result.classList.toggle('error', error)
  }
}

function replaceOptions(select: HTMLSelectElement, options: [string, string][]): void {
  const current = select.value
  const same =
    select.options.length === options.length &&
    options.every(([v, t], i) => select.options[i]?.value === v && select.options[i]?.text === t)
  if (same) return
  select.replaceChildren(...options.map(([value, text]) => new Option(text, value)))
  if (options.some(([v]) => v === current)) select.value = current
}
