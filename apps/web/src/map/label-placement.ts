import RBush from 'rbush'

// Where each map label goes (issue 18: labels were drawn over each other until they read
// "offliriesince"). Greedy, most important first: each label tries a few places around
// its anchor and takes the first that overlaps nothing placed before it and stays in
// view; a label with no room is dropped. The placed boxes sit in an R-tree (rbush), so a
// label costs a few queries, not a pass over every other label.

/** A box in the map container's coordinates, CSS px. */
export interface Box {
  minX: number
  minY: number
  maxX: number
  maxY: number
}

/** The places a label tries around its anchor, in this order. */
export const PLACES = ['right', 'left', 'above', 'below'] as const
export type Place = (typeof PLACES)[number]

export interface LabelCandidate {
  key: string
  /** The anchor (a drone, a station), container px. */
  x: number
  y: number
  /** The label's size, CSS px. */
  width: number
  height: number
  /** Lower places first (see LABEL_PRIORITY). */
  priority: number
  /** Distance between the anchor and the label's near edge, px (the marker's half size and a gap). */
  gap: number
}

export interface PlacedLabel {
  key: string
  place: Place
  /** Top-left corner, container px. */
  x: number
  y: number
}

/** Space kept between two labels, px: touching labels read as one. */
export const LABEL_MARGIN_PX = 2

/**
 * Places `candidates` (any order) around their anchors without overlapping one another
 * or `obstacles` (station squares, the docked counts, cluster bubbles) and inside a view
 * of `width` × `height`. Returns the labels that found room, most important first.
 */
export function placeLabels(
  candidates: readonly LabelCandidate[],
  obstacles: readonly Box[],
  width: number,
  height: number,
): PlacedLabel[] {
  const taken = new RBush<Box>()
  taken.load(obstacles.map((b) => ({ ...b })))
  const order = [...candidates].sort(
    (a, b) => a.priority - b.priority || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
  )
  const placed: PlacedLabel[] = []
  for (const c of order) {
    for (const place of PLACES) {
      const { x, y } = corner(c, place)
      if (x < 0 || y < 0 || x + c.width > width || y + c.height > height) continue
      // The margin goes on the box searched for, so two placed boxes are at least that far apart.
      const box = {
        minX: x - LABEL_MARGIN_PX,
        minY: y - LABEL_MARGIN_PX,
        maxX: x + c.width + LABEL_MARGIN_PX,
        maxY: y + c.height + LABEL_MARGIN_PX,
      }
      if (taken.collides(box)) continue
      taken.insert({ minX: x, minY: y, maxX: x + c.width, maxY: y + c.height })
      placed.push({ key: c.key, place, x, y })
      break
    }
  }
  return placed
}

/** The label's top-left corner in a place around its anchor, rounded to whole px. */
function corner(c: LabelCandidate, place: Place): { x: number; y: number } {
  // Above and below stand off far enough to clear the labels right and left of the same
  // anchor: the four places fit around one drone.
  const v = Math.max(c.gap, c.height / 2 + LABEL_MARGIN_PX + 1)
  switch (place) {
    case 'right':
      return { x: Math.round(c.x + c.gap), y: Math.round(c.y - c.height / 2) }
    case 'left':
      return { x: Math.round(c.x - c.gap - c.width), y: Math.round(c.y - c.height / 2) }
    case 'above':
      return { x: Math.round(c.x - c.width / 2), y: Math.round(c.y - v - c.height) }
    case 'below':
      return { x: Math.round(c.x - c.width / 2), y: Math.round(c.y + v) }
  }
}
