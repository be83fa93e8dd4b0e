// The origin a request reached, for absolute URLs the server hands out (served specs, redirects).
import type { Request } from 'express';

// A Host header this plain is safe to echo back; anything else gets no origin.
const PLAIN_HOST = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

/** PUBLIC_BASE_URL, else the request's own origin (behind TRUST_PROXY, the proxy's), if plain. */
export function requestOrigin(req: Request, publicBaseUrl: string | undefined): string | undefined {
  if (publicBaseUrl) return publicBaseUrl;
  // Express 5's req.host keeps the port and reads X-Forwarded-Host only when the proxy is trusted.
  const host = req.host;
  return host && PLAIN_HOST.test(host) ? `${req.protocol}://${host}` : undefined;
}
