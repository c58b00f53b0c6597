/**
 * Run ids go into NATS subjects, Redis keys and BullMQ job ids, so they are
 * `[a-z0-9_]` only: no `.` (subject token separator, and BullMQ's job-id
 * separator), no `:`, no `*` or `>` (subject wildcards).
 */
import { randomIdBytes } from '@muse/contracts';

/** What the gateway accepts as a run id in a path or a subscription; anything else is an unknown run. */
export const RUN_ID_PATTERN = /^[a-z0-9_]{1,128}$/;

export function isRunId(value: string): boolean {
  return RUN_ID_PATTERN.test(value);
}

/** Crockford base32, lower-cased: a ULID in `[0-9a-z]`. */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * `run_` + a 26-character lowercase ULID: 48 bits of milliseconds (ids sort
 * by creation time) then 80 random bits.
 */
export function newRunId(nowMs = Date.now(), random: (n: number) => Uint8Array = randomIdBytes): string {
  let time = '';
  let t = nowMs;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  const bytes = random(10);
  let bits = 0;
  let acc = 0;
  let rand = '';
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      rand += ALPHABET[(acc >> bits) & 31]!;
    }
    acc &= (1 << bits) - 1;
  }
  return `run_${time}${rand}`;
}
