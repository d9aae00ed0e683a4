import { describe, expect, it } from 'vitest'
import { AckOrder } from '../src/ack-order.ts'

describe('AckOrder', () => {
  it("releases a client's acknowledgements in the order its publishes came", () => {
    const order = new AckOrder()
    const client = {}
    const other = {}
    const acked: string[] = []
    const first = order.hold(client, () => acked.push('first'))
    const second = order.hold(client, (err) => acked.push(`second ${err?.message ?? ''}`))
    const third = order.hold(client, () => acked.push('third'))
    const elsewhere = order.hold(other, () => acked.push('other client'))

    third(null)
    second(new Error('refused'))
    elsewhere(null) // another client's does not wait for this one's
    expect(acked).toEqual(['other client'])
    first(null)
    expect(acked).toEqual(['other client', 'first', 'second refused', 'third'])
    const fourth = order.hold(client, () => acked.push('fourth'))
    fourth(null)
    expect(acked.at(-1)).toBe('fourth')
  })
})
