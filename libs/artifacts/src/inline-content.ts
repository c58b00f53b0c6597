import { createHash } from 'node:crypto';
import { MuseError } from '@muse/contracts';

/** The bytes of a blob that came inside a commit request (a small step output: no upload before the commit), checked against its digest and size. */
export function inlineBlobBytes(name: string, digest: string, size: number, content: string): Buffer {
  const bytes = Buffer.from(content, 'base64');
  const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (actual !== digest || bytes.length !== size) {
    throw new MuseError('MUSE_ERR_REQUEST_INVALID', `artifact "${name}" says ${digest} (${size} bytes), its content is ${actual} (${bytes.length} bytes)`, {
      details: { name, digest, size, contentDigest: actual, contentSize: bytes.length },
    });
  }
  return bytes;
}

/**
 * What is wrong with an artifact's name in a commit (1 to 255 characters, once per commit), or undefined; `seen` holds
 * the names before it in the commit and gets this one.
 */
export function artifactNameProblem(name: string, seen: Set<string>): string | undefined {
  if (name.length === 0 || name.length > 255) return 'artifact names are 1 to 255 characters';
  // One name twice in one commit would make the second a replay of the first.
  if (seen.has(name)) return `artifact "${name}" appears twice`;
  seen.add(name);
  return undefined;
}
