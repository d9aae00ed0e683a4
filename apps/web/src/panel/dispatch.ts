import { ApiError, createDelivery } from '../api.ts'
import type { FleetStore } from '../store.ts'

const TOKEN_KEY = 'skyline.operatorToken'

/**
 * The dispatch form: pick-up and drop-off stations of a fleet, a payload, and the
 * operator token. The token is a `service` credential, so it is kept for this tab
 * only (sessionStorage), never stored empty, and can be forgotten; `npm start` opens
 * the map with `#token=…` so the demo can dispatch at once. Posts a delivery.
 */
export class DispatchForm {
  constructor(
    private readonly el: {
      form: HTMLFormElement
      fleet: HTMLSelectElement
      pickup: HTMLSelectElement
      dropoff: HTMLSelectElement
      payload: HTMLInputElement
      token: HTMLInputElement
      forget: HTMLButtonElement
      submit: HTMLButtonElement
      result: HTMLElement
    },
    private readonly store: FleetStore,
  ) {
    const fromUrl = new URLSearchParams(location.hash.slice(1)).get('token')
    if (fromUrl !== null && fromUrl !== '') {
      sessionStorage.setItem(TOKEN_KEY, fromUrl)
      // The token leaves the address bar: it should not end up in bookmarks or screenshots.
      history.replaceState(null, '', location.pathname + location.search)
    }
    el.token.value = sessionStorage.getItem(TOKEN_KEY) ?? ''
    el.forget.addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY)
      el.token.value = ''
      this.say('token forgotten', false)
    })
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
    const token = el.token.value.trim()
    if (token !== '') sessionStorage.setItem(TOKEN_KEY, token)
    el.submit.disabled = true
    try {
      const d = await createDelivery(token, {
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
