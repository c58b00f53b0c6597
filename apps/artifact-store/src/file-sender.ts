/**
 * Sends bytes of a local blob file on an HTTP response through a small ring
 * of buffers that are read into again and again, instead of a read stream's
 * fresh 64 KiB chunk per read. Those chunks are small objects on the JS heap
 * over memory outside it, freed only when the GC collects them: at disk speed
 * tens of MiB of sent, dead chunks piled up between collections. Here the
 * memory of a download is its ring, whatever the size of the blob.
 *
 * A buffer is read into again only after the socket has taken the write from
 * it (the write's callback), so at most `buffers` writes are in flight; that
 * is also the backpressure.
 *
 * With `verify`, the bytes are hashed as they go and the last chunk is sent
 * only once the digest and size match: on a mismatch the response is
 * destroyed before its end, so a client sees a short body (its Content-Length
 * unmet), never a corrupt one that looks complete.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { MuseError } from '@muse/contracts';
import { releaseChunk } from './blob-spool.js';

export interface FileBody {
  /** Open for reading; sendFile closes it. */
  handle: FileHandle;
  /** First byte to send. */
  start: number;
  /** Last byte to send (inclusive); `start - 1` sends nothing. */
  end: number;
  /** The whole blob's digest and size, checked as it streams (only when sending the whole blob). */
  verify?: { digest: string; size: number };
}

export interface SendFileOptions {
  /** Bytes per read. @default 131_072 */
  chunkBytes?: number;
  /** Buffers in the ring (reads and writes in flight). @default 3 */
  buffers?: number;
}

/** How a send ended: every byte taken by the socket, or the client went away first. */
export type SendOutcome = 'sent' | 'client-closed';

/**
 * Writes bytes `start..end` of the file on `res` (whose status and headers
 * are already set) and ends it; closes the file either way. Throws, after
 * destroying `res`, when the file cannot be read or fails verification.
 */
export async function sendFile(res: ServerResponse, body: FileBody, opts: SendFileOptions = {}): Promise<SendOutcome> {
  const total = body.end - body.start + 1;
  const chunkBytes = Math.max(1, Math.min(opts.chunkBytes ?? 131_072, total));
  const ring = Array.from({ length: Math.max(1, Math.min(opts.buffers ?? 3, Math.ceil(total / chunkBytes))) }, () => Buffer.allocUnsafeSlow(chunkBytes));
  const inFlight: Array<Promise<void> | undefined> = [];
  let closedEarly = false;
  const closed = new Promise<never>((_resolve, reject) => {
    res.once('close', () => {
      closedEarly = !res.writableFinished;
      reject(new ClientClosed());
    });
  });
  closed.catch(() => undefined);
  const hash = body.verify ? createHash('sha256') : undefined;
  const check = (sent: number) => {
    const actual = `sha256:${hash!.digest('hex')}`;
    if (actual !== body.verify!.digest || sent !== body.verify!.size) throw mismatch(body, sent, actual);
  };
  try {
    let pos = body.start;
    for (let i = 0; pos <= body.end; i++) {
      const slot = i % ring.length;
      // The socket has taken this buffer's last write before it is read into again.
      await inFlight[slot];
      const { bytesRead } = await body.handle.read(ring[slot]!, 0, Math.min(chunkBytes, body.end - pos + 1), pos);
      if (bytesRead === 0) throw mismatch(body, pos - body.start, null);
      const view = ring[slot]!.subarray(0, bytesRead);
      pos += bytesRead;
      if (hash) {
        hash.update(view);
        if (pos > body.end) check(pos - body.start);
      }
      if (closedEarly) return 'client-closed';
      const written = Promise.race([write(res, view), closed]);
      written.catch(() => undefined); // awaited later, or not at all once the send failed
      inFlight[slot] = written;
    }
    if (hash && total === 0) check(0);
    await Promise.race([Promise.all(inFlight), closed]);
    await Promise.race([new Promise<void>((resolve) => res.end(resolve)), closed]);
    // Every write is done: the ring's memory can go now rather than at the next GC.
    for (const b of ring) releaseChunk(b);
    return 'sent';
  } catch (err) {
    // A write refused because the client went away (its 'close' may come a tick later) is not a failure of ours.
    if (err instanceof ClientClosed || closedEarly || (!(err instanceof MuseError) && (res.destroyed || !res.socket || res.socket.destroyed))) return 'client-closed';
    res.destroy();
    throw err;
  } finally {
    await body.handle.close().catch(() => undefined);
  }
}

class ClientClosed extends Error {}

function write(res: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    res.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

function mismatch(body: FileBody, size: number, actual: string | null): MuseError {
  return new MuseError('MUSE_ERR_ARTIFACT_DIGEST_MISMATCH', undefined, {
    details: { expected: body.verify?.digest ?? null, actual, expectedSize: body.verify?.size ?? body.end - body.start + 1, size },
  });
}
