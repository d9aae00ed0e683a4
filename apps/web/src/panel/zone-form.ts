import type { GeofenceKind, GeofenceView } from '@skyline/schemas'
import { ApiError } from '../api.ts'

/** What the form gives: the zone's fields (a window's end null when left empty). */
export interface ZoneFields {
  fleet: string
  name: string
  kind: GeofenceKind
  activeFrom: string | null
  activeUntil: string | null
}

/** A new zone (its fleet to pick among `fleets`), or one that exists (its fleet fixed). */
export type ZoneFormMode = { fleets: string[] } | { zone: GeofenceView }

export interface ZoneFormActions {
  /** Saves; a rejection (the api's 4xx) is shown in the form, which stays open. */
  save: (fields: ZoneFields) => Promise<void>
  /** The form closed without saving (a drawing is dropped). */
  cancel: () => void
  /** Deletes the zone (a zone that exists only). */
  remove?: () => Promise<void>
}

const pad = (n: number) => String(n).padStart(2, '0')

/** An ISO instant as a `datetime-local` value, the browser's local time. */
function toLocalInput(iso: string | null): string {
  if (iso === null) return ''
  const d = new Date(iso)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`
}

/** A `datetime-local` value (local time) as an ISO instant; empty: null (an open end). */
function fromLocalInput(value: string): string | null {
  return value === '' ? null : new Date(value).toISOString()
}

/** An error as the form shows it: the api's code and message. */
export const errorText = (err: unknown): string =>
  err instanceof ApiError ? `${err.code}: ${err.message}` : String(err)

/**
 * The small form over the map for a zone (issue 18): name, kind, fleet (one of the token's)
 * and an optional active window. Opened by the editor after a polygon is drawn (Save
 * creates it) or on a click on a zone (Save changes it, Delete deletes it). What the api
 * refuses is shown in the form with its message.
 */
export class ZoneForm {
  private actions: ZoneFormActions | undefined

  constructor(
    private readonly el: {
      form: HTMLFormElement
      title: HTMLElement
      name: HTMLInputElement
      kind: HTMLSelectElement
      fleet: HTMLSelectElement
      from: HTMLInputElement
      until: HTMLInputElement
      save: HTMLButtonElement
      cancel: HTMLButtonElement
      remove: HTMLButtonElement
      error: HTMLElement
    },
  ) {
    el.form.addEventListener('submit', (e) => {
      e.preventDefault()
      void this.run(() =>
        this.actions!.save({
          fleet: el.fleet.value,
          name: el.name.value,
          kind: el.kind.value as GeofenceKind,
          activeFrom: fromLocalInput(el.from.value),
          activeUntil: fromLocalInput(el.until.value),
        }),
      )
    })
    el.cancel.addEventListener('click', () => {
      const actions = this.actions
      this.close()
      actions?.cancel()
    })
    el.remove.addEventListener('click', () => {
      const remove = this.actions?.remove
      if (remove !== undefined) void this.run(remove)
    })
  }

  get isOpen(): boolean {
    return !this.el.form.hidden
  }

  open(mode: ZoneFormMode, actions: ZoneFormActions): void {
    // Another form still open is given up (its drawing dropped).
    if (this.actions !== undefined) this.actions.cancel()
    this.actions = actions
    const { el } = this
    const zone = 'zone' in mode ? mode.zone : undefined
    el.title.textContent = zone === undefined ? 'New zone' : `Zone ${zone.name}`
    el.name.value = zone?.name ?? ''
    el.kind.value = zone?.kind ?? 'no_fly'
    const fleets = zone === undefined ? ('fleets' in mode ? mode.fleets : []) : [zone.fleetId]
    el.fleet.replaceChildren(...fleets.map((f) => new Option(f, f)))
    el.fleet.disabled = zone !== undefined // a zone stays in its fleet
    el.from.value = toLocalInput(zone?.activeFrom ?? null)
    el.until.value = toLocalInput(zone?.activeUntil ?? null)
    el.remove.hidden = actions.remove === undefined
    el.error.textContent = ''
    el.form.hidden = false
    el.name.focus()
  }

  close(): void {
    this.actions = undefined
    this.el.form.hidden = true
    this.el.error.textContent = ''
  }

  /** Runs a save or a delete: closes on success, shows the api's refusal otherwise. */
  private async run(action: () => Promise<void>): Promise<void> {
    const { el } = this
    el.save.disabled = el.remove.disabled = true
    el.error.textContent = ''
    try {
      await action()
      this.close()
    } catch (err) {
      el.error.textContent = errorText(err)
    } finally {
      el.save.disabled = el.remove.disabled = false
    }
  }
}
