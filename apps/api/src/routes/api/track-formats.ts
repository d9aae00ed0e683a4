import type { TrackPoint } from '../../plugins/app/fleet-repository.ts'

const escapeXml = (s: string) => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`)

/** A track as GPX 1.1, which GPS tools and mapping apps read. */
export function trackAsGpx(droneId: string, points: TrackPoint[]): string {
  const pts = points
    .map(
      (p) =>
        `<trkpt lat="${p.lat}" lon="${p.lon}"><ele>${p.altM}</ele><time>${p.ts.toISOString()}</time></trkpt>`,
    )
    .join('\n')
  return `<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="Skyline" xmlns="http://www.topografix.com/GPX/1/1">
<trk><name>${escapeXml(droneId)}</name><trkseg>
${pts}
</trkseg></trk>
</gpx>
`
}
