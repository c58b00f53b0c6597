import { randomBytes } from 'node:crypto';

/** Bytes one draw from the system's generator fetches. */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let taken = 0;

/**
 * `n` random bytes (at most 4096) for ids (run ids, artifact ids), from the operating system's generator like
 * `randomBytes`, drawn 4 KiB at a time: each draw is a system call (`getrandom`), dear on a VM, and one per id was
 * 3-4% of a busy gateway's and coordinator's CPU. Not for keys or secrets, which should not sit in a shared buffer.
 */
export function randomIdBytes(n: number): Uint8Array {
  if (n > POOL_BYTES) throw new RangeError(`randomIdBytes: at most ${POOL_BYTES} bytes at a time`);
  if (taken + n > pool.length) {
    pool = randomBytes(POOL_BYTES);
    taken = 0;
  }
  const out = pool.subarray(taken, taken + n);
  taken += n;
  return out;
}
