/**
 * Tool results: structured content (and the same JSON as text, for clients
 * that only read text). A failed tool answers `isError: true` with the REST
 * error envelope, `{error: {code, message, retryable, details}}`, exactly as
 * the gateway sent it.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { toErrorBody, type ErrorBody } from '@muse/contracts';
import { isMuseApiError } from './muse-api.client.js';

export function toolOk(value: Record<string, unknown>, extraText?: string): CallToolResult {
  return {
    structuredContent: value,
    content: [{ type: 'text', text: JSON.stringify(value) }, ...(extraText !== undefined ? [{ type: 'text' as const, text: extraText }] : [])],
  };
}

export function toolError(error: ErrorBody): CallToolResult {
  const envelope = { error };
  return { isError: true, structuredContent: envelope, content: [{ type: 'text', text: JSON.stringify(envelope) }] };
}

/** Any failure of a tool as a Muse-shaped tool error: the gateway's body when it answered, else the catalogue's. */
export function errorBodyOf(err: unknown): ErrorBody {
  return isMuseApiError(err) ? err.body : toErrorBody(err);
}
