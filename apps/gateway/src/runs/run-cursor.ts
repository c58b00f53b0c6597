/**
 * The `cursor` of `GET /v1/runs`: the position of the last run a page looked
 * at in the project's index (its score, createdAt in epoch ms, and its id).
 * Opaque to clients (base64url JSON); a keyset, not an offset, so runs
 * created while a client pages do not shift what it sees.
 */
import { z } from 'zod';
import { MuseError } from '@muse/contracts';

export interface RunCursor {
  /** Score in the run index, as Redis prints it. */
  score: string;
  runId: string;
}

const CursorSchema = z.strictObject({
  v: z.literal(1),
  s: z.string().regex(/^-?\d+(\.\d+)?(e[+-]?\d+)?$/i),
  id: z.string().min(1).max(128),
});

export function encodeCursor(c: RunCursor): string {
  return Buffer.from(JSON.stringify({ v: 1, s: c.score, id: c.runId })).toString('base64url');
}

export function decodeCursor(raw: string): RunCursor {
  try {
    const parsed = CursorSchema.parse(JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')));
    return { score: parsed.s, runId: parsed.id };
  } catch {
    throw new MuseError('MUSE_ERR_REQUEST_INVALID', 'cursor is not one this API returned', {
      details: { issues: [{ path: 'cursor', field: 'cursor', message: 'invalid cursor' }] },
    });
  }
}

/**
 * Whether an index entry comes after the cursor in newest-first order (score
 * descending, then id descending, which is how ZRANGE ... REV orders ties).
 */
export function isAfterCursor(entry: RunCursor, cursor: RunCursor | undefined): boolean {
  if (!cursor) return true;
  const a = Number(entry.score);
  const b = Number(cursor.score);
  if (a !== b) return a < b;
  return entry.runId < cursor.runId;
}
