import type { TrackPoint } from '../../plugins/app/fleet-repository.ts'

/** A track as a GeoJSON Feature: a LineString [lon, lat, altM] with the times alongside. */
export function trackAsGeoJson(droneId: string, points: TrackPoint[]): string {
  return JSON.stringify({
    type: 'Feature',
    geometry: { type: 'LineString', coordinates: points.map((p) => [p.lon, p.lat, p.altM]) },
    properties: {
      droneId,
      times: points.map((p) => p.ts.toISOString()),
      speedsMps: points.map((p) => p.speedMps),
    },
  })
}

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
