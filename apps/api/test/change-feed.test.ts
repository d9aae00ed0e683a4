import { describe, expect, it } from 'vitest'
import { ChangeCollector, peerNotice } from '../src/cluster/change-feed.ts'

describe('the change notices api instances tell each other', () => {
  it('cuts what changed into NOTIFY payloads under 8,000 bytes, each key once, none lost', () => {
    const c = new ChangeCollector('a')
    for (let i = 0; i < 3_000; i++) c.drone('fleet-1', `drone-${i}`)
    c.drone('fleet-1', 'drone-1') // twice: told once
    c.delivery('d1')
    const payloads = c.flush()
    expect(payloads.length).toBeGreaterThan(1)
    for (const p of payloads) expect(Buffer.byteLength(p)).toBeLessThan(8_000)
    const notices = payloads.map((p) => peerNotice(p, 'b')!)
    const drones = notices.flatMap((n) => n.drones)
    expect(drones).toHaveLength(3_000)
    expect(new Set(drones).size).toBe(3_000)
    expect(notices.flatMap((n) => n.deliveries)).toEqual(['d1'])
    expect(c.flush()).toEqual([]) // nothing new
  })

  it('tells the fleets whose zones changed, and reads a notice without them as none', () => {
    const c = new ChangeCollector('a')
    c.geofence('f1')
    c.geofence('f1')
    c.geofence('f2')
    const [payload, ...more] = c.flush()
    expect(more).toEqual([])
    expect(peerNotice(payload!, 'b')).toMatchObject({ geofences: ['f1', 'f2'], deliveries: [] })
    // An instance of the version before zones says nothing of them.
    expect(
      peerNotice('{"from":"x","drones":[],"stations":[],"deliveries":["d1"]}', 'b'),
    ).toMatchObject({ deliveries: ['d1'], geofences: [] })
  })

  it('hears other instances only, and nothing that is not a notice', () => {
    const c = new ChangeCollector('a')
    c.delivery('d1')
    const [payload] = c.flush()
    expect(peerNotice(payload!, 'a')).toBeUndefined()
    expect(peerNotice(payload!, 'b')).toMatchObject({ from: 'a', deliveries: ['d1'] })
    for (const bad of [
      '',
      'null',
      '{"from":"x"}',
      '{"from":"x","drones":[1],"stations":[],"deliveries":[]}',
    ])
      expect(peerNotice(bad, 'b'), bad).toBeUndefined()
  })
})
