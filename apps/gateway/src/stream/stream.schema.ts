/**
 * What the gateway sends on the `/v1/stream` WebSocket. The client side
 * (`StreamClientMessageSchema`) is in contracts; this side is defined here
 * until it moves there too (see the gateway's issue note).
 */
import { z } from 'zod';
import { ErrorBodySchema, RunEventSchema } from '@muse/contracts';

export const StreamServerMessageSchema = z.discriminatedUnion('type', [
  /** The subscription is live: replayed events (if any) follow, then live ones. */
  z.object({ type: z.literal('subscribed'), runId: z.string() }),
  z.object({ type: z.literal('event'), event: RunEventSchema }),
  z.object({ type: z.literal('pong') }),
  /** `runId` says which subscription the error is about, when it is about one. */
  z.object({ type: z.literal('error'), error: ErrorBodySchema, runId: z.string().optional() }),
]);
export type StreamServerMessage = z.infer<typeof StreamServerMessageSchema>;

export const STREAM_PATH = '/v1/stream';
