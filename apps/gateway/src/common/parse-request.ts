import type { z } from 'zod';
import { MuseError, zodIssues } from '@muse/contracts';

/** Parses part of a request (query, body) with a contracts schema; MUSE_ERR_REQUEST_INVALID naming each issue otherwise. */
export function parseRequest<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const res = schema.safeParse(value);
  if (res.success) return res.data;
  const issues = zodIssues(res.error, value);
  const first = issues[0];
  throw new MuseError('MUSE_ERR_REQUEST_INVALID', `The ${what} is invalid${first ? `: ${first.path ? `${first.path}: ` : ''}${first.message}` : ''}`, {
    details: { issues },
  });
}
