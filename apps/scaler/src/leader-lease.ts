/**
 * One active scaler at a time: a lease in Redis (`SET key id NX PX ttl`),
 * renewed by its holder every interval with a compare-and-extend script, and
 * deleted by it on shutdown (compare-and-delete). A replica that dies stops
 * renewing; the key expires after `ttlMs` and the next replica to try takes
 * it. Every acquisition bumps a term counter, stamped on each decision, so a
 * reader can tell two leaders' decisions apart.
 *
 * Why not a hand-written election: this is the standard single-Redis lease
 * (the Redis docs' `SET NX PX` lock); Redlock across several Redis servers
 * would add nothing with one Redis. The holder also stops acting as soon as
 * a renewal fails, and acts only within `ttlMs` of its last successful
 * renewal, so an old leader paused past its lease does not act beside the new one.
 */
import type { Redis } from 'ioredis';

// KEYS[1] lease; ARGV[1] id, ARGV[2] ttl ms. 1 when still ours and extended.
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
// KEYS[1] lease; ARGV[1] id. 1 when it was ours and is gone.
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export interface LeaseState {
  leader: boolean;
  /** The term of our leadership (0 while not leader). */
  term: number;
  /** Whoever holds the lease now, as far as the last look saw (null: nobody). */
  holder: string | null;
}

export class LeaderLease {
  private validUntil = 0;
  private term = 0;

  constructor(
    private readonly redis: Pick<Redis, 'set' | 'get' | 'eval' | 'incr'>,
    private readonly keys: { lease: string; term: string },
    readonly id: string,
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes or renews the lease; call it every interval (well within `ttlMs`). */
  async tick(): Promise<LeaseState> {
    const started = this.now();
    if (this.term > 0) {
      const renewed = Number(await this.redis.eval(RENEW, 1, this.keys.lease, this.id, String(this.ttlMs)));
      if (renewed === 1) {
        this.validUntil = started + this.ttlMs;
        return { leader: true, term: this.term, holder: this.id };
      }
      this.term = 0; // lost it (expired while we were away, and someone else may hold it)
      this.validUntil = 0;
    }
    const got = await this.redis.set(this.keys.lease, this.id, 'PX', this.ttlMs, 'NX');
    if (got === 'OK') {
      this.term = await this.redis.incr(this.keys.term);
      this.validUntil = started + this.ttlMs;
      return { leader: true, term: this.term, holder: this.id };
    }
    return { leader: false, term: 0, holder: await this.redis.get(this.keys.lease) };
  }

  /** True while the last successful take or renewal is younger than the TTL: the only time we may act. */
  isLeader(): boolean {
    return this.term > 0 && this.now() < this.validUntil;
  }

  currentTerm(): number {
    return this.isLeader() ? this.term : 0;
  }

  /** Gives the lease up (only if still ours), so a standby takes over at its next tick instead of after the TTL. */
  async release(): Promise<void> {
    const had = this.term > 0;
    this.term = 0;
    this.validUntil = 0;
    if (had) await this.redis.eval(RELEASE, 1, this.keys.lease, this.id);
  }
}
