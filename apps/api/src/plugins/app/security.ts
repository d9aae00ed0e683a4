import helmet from '@fastify/helmet'
import fp from 'fastify-plugin'
import { liveOrigins } from '../../config.ts'
import type { ApiConfig } from '../../config.ts'

/**
 * A host a CSP source may name: a DNS name or IPv4 (`*.` first at most), and a port. Not an
 * IPv6 literal: CSP's host grammar has none (Chromium ignores `[::1]` as invalid).
 */
const HOST_SOURCE = /^(\*\.)?([a-z0-9-]+\.)*[a-z0-9-]+(:\d{1,5})?$/i

/**
 * Where the map's tiles come from, as a CSP source: MAP_TILE_URL's scheme and host, with a
 * leading `{s}` (Leaflet's subdomains) as `*`. A host that is still a template past that
 * (`{s}` elsewhere, `{r}`) allows the scheme, every host of it: the map must show its tiles.
 * `undefined` for `none`.
 */
export function tileSource(template: string): string | undefined {
  if (template === 'none') return undefined
  const m = /^(https?:)\/\/(?:[^/?#@]*@)?([^/?#]*)/i.exec(template)
  if (m === null) return undefined // config.ts lets no such template through
  const scheme = m[1]!.toLowerCase()
  const host = m[2]!.replace(/^\{s\}\./, '*.')
  return HOST_SOURCE.test(host) ? `${scheme}//${host.toLowerCase()}` : scheme
}

/**
 * The identity server the map signs in at, as a connect-src source: OIDC_ISSUER's origin,
 * where the page fetches the discovery document and the token endpoint (RFC 8414 puts
 * them at the issuer's host; Keycloak, Auth0, Entra ID, oidc-provider all do). The
 * authorization and end-session endpoints are navigations, which CSP does not govern.
 * Only when the map signs in there (OIDC_WEB_CLIENT_ID). `undefined` otherwise, and for an
 * IPv6 literal, which CSP cannot name (the page then cannot reach the issuer: give it a
 * DNS name).
 */
export function issuerSource(
  config: Pick<ApiConfig, 'OIDC_ISSUER' | 'OIDC_WEB_CLIENT_ID'>,
): string | undefined {
  if (config.OIDC_ISSUER === undefined || config.OIDC_WEB_CLIENT_ID === undefined) return undefined
  const { protocol, host } = new URL(config.OIDC_ISSUER)
  return HOST_SOURCE.test(host) ? `${protocol}//${host}` : undefined
}

/**
 * The map's live stream, as connect-src sources: the origins it may be opened from
 * (liveOrigins), as ws: and wss:. CSP 3 has `'self'` cover a same-origin WebSocket already;
 * older browsers need it spelled out.
 */
function liveSources(config: ApiConfig, port: number): string[] {
  return liveOrigins(config, port)
    .filter((o) => !o.includes('[')) // an IPv6 literal is no CSP source; 'self' covers it
    .map((o) => o.replace(/^http/, 'ws'))
}

/**
 * The HTTP security headers, on every answer (issue 16: the map keeps a token in the
 * browser, so a script injected into the page would hold it). helmet's headers with a
 * content security policy written out whole, not helmet's default:
 * - scripts, styles, fonts and frames from this origin only, no inline script and no
 *   inline style element or attribute (Leaflet and the map set `element.style`, which CSP
 *   does not govern); no plug-ins; no `<base>`; framed by nobody;
 * - images from here, `data:` (Leaflet's blank tile, swagger-ui's icons) and the tile server;
 * - fetches and the live WebSocket to this origin only, and to the identity server when
 *   the map signs in there (issuerSource).
 * swagger-ui at /docs gets the same policy but for inline styles: its bundle injects a
 * `<style>` element (app.ts relaxes `style-src` on its routes only; no script is allowed
 * there either, and its page holds no token of the map's).
 *
 * Left out on purpose: HSTS (the api speaks plain HTTP; the proxy that terminates TLS is
 * the one to pin it) and `upgrade-insecure-requests` (it breaks the map on plain HTTP at
 * any address but localhost). Referrer-Policy is `no-referrer`; the map's tile requests
 * say `strict-origin` for themselves (apps/web/src/main.ts), as tile servers require a
 * Referer, and an origin carries no token (the token is in the fragment, never sent).
 */
export default fp(
  async (fastify) => {
    const { config } = fastify
    const tiles = tileSource(config.MAP_TILE_URL)
    const issuer = issuerSource(config)
    if (config.OIDC_WEB_CLIENT_ID !== undefined && issuer === undefined)
      fastify.log.warn(
        { OIDC_ISSUER: config.OIDC_ISSUER },
        'the content security policy cannot name an issuer at an IPv6 address: the map cannot sign in there',
      )
    const port = () => {
      const address = fastify.server.address()
      return typeof address === 'object' && address !== null ? address.port : config.HTTP_PORT
    }
    await fastify.register(helmet, {
      global: true,
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          scriptSrcAttr: ["'none'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'", 'data:', ...(tiles === undefined ? [] : [tiles])],
          // Per answer: the port is known once listening (HTTP_PORT 0 picks one).
          connectSrc: [
            "'self'",
            () => liveSources(config, port()).join(' '),
            ...(issuer === undefined ? [] : [issuer]),
          ],
          fontSrc: ["'self'"],
          objectSrc: ["'none'"],
          baseUri: ["'none'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
        },
      },
      strictTransportSecurity: false,
      referrerPolicy: { policy: 'no-referrer' },
      xFrameOptions: { action: 'deny' },
    })
  },
  { name: 'security' },
)
