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
