import { describe, expect, it } from 'vitest'
import { LABEL_MARGIN_PX, placeLabels } from '../src/map/label-placement.ts'
import type { LabelCandidate } from '../src/map/label-placement.ts'

// The geometry behind the map's labels (issue 18): no browser needed.

const label = (key: string, x: number, y: number, priority: number): LabelCandidate => ({
  key,
  x,
  y,
  width: 60,
  height: 16,
  priority,
  gap: 10,
})

describe('placing labels', () => {
  it('puts a lone label to the right of its anchor, its middle level with it', () => {
    expect(placeLabels([label('a', 100, 100, 1)], [], 800, 600)).toEqual([
      { key: 'a', place: 'right', x: 110, y: 92 },
    ])
  })

  it('tries left, above and below when the right is taken, and drops a fifth label on the same anchor', () => {
    const five = ['e', 'd', 'c', 'b', 'a'].map((k) => label(k, 200, 200, 1))
    const placed = placeLabels(five, [], 800, 600)
    expect(placed.map((p) => [p.key, p.place])).toEqual([
      ['a', 'right'],
      ['b', 'left'],
      ['c', 'above'],
      ['d', 'below'],
    ])
  })

  it('gives the room to the more important label, whatever the order they come in', () => {
    // In the view's top-left corner only the right of the anchor is in view: one label fits.
    const lesser = label('lesser', 10, 8, 4)
    const more = label('more', 10, 8, 1)
    expect(placeLabels([lesser, more], [], 100, 30)).toEqual([
      { key: 'more', place: 'right', x: 20, y: 0 },
    ])
  })

  it('keeps clear of obstacles by the margin, and inside the view', () => {
    const obstacle = { minX: 108, minY: 80, maxX: 180, maxY: 120 }
    const [p] = placeLabels([label('a', 100, 100, 1)], [obstacle], 800, 600)
    expect(p).toMatchObject({ place: 'left', x: 30 })
    // At the view's left edge, left is out: above it goes.
    const [q] = placeLabels([label('b', 60, 100, 1)], [obstacle], 800, 600)
    expect(q?.place).toBe('above')
    expect(q!.x).toBeGreaterThanOrEqual(0)
    // Two labels side by side are at least the margin apart.
    const [r, s] = placeLabels([label('r', 100, 300, 1), label('s', 172, 300, 2)], [], 800, 600)
    expect(s!.x - (r!.x + 60)).toBeGreaterThanOrEqual(LABEL_MARGIN_PX)
  })
})
