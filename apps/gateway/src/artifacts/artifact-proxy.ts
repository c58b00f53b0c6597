/**
 * Artifact content goes from the artifact store to the client as a stream:
 * the gateway never holds a whole file. These are the header rules of that
 * pass-through.
 */

/** Request headers the client may send on to the store. */
const FORWARDED_REQUEST_HEADERS = ['range', 'if-range', 'if-none-match', 'if-modified-since'] as const;

/** Response headers of the store the client gets back. */
const FORWARDED_RESPONSE_HEADERS = [
  'content-type',
  'content-length',
  'content-range',
  'accept-ranges',
  'etag',
  'last-modified',
  'content-disposition',
  'cache-control',
] as const;

export function artifactContentUrl(storeUrl: string, artifactId: string): string {
  return `${storeUrl.replace(/\/+$/, '')}/v1/artifacts/${encodeURIComponent(artifactId)}/content`;
}

/**
 * Headers for the store's request. Compression is refused (`identity`) so the
 * store's Content-Length stays true for the bytes the client receives.
 */
export function upstreamRequestHeaders(incoming: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = { 'accept-encoding': 'identity' };
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const v = incoming[name];
    const value = Array.isArray(v) ? v[0] : v;
    if (value !== undefined && value.length <= 1024) out[name] = value;
  }
  return out;
}

export function downstreamHeaders(upstream: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of FORWARDED_RESPONSE_HEADERS) {
    const value = upstream.get(name);
    if (value !== null) out[name] = value;
  }
  return out;
}
