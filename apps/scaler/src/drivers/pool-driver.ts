/**
 * What acts on a pool's desired size. The scaler's leader calls `scale` for
 * every pool each interval (idempotent: a driver already at `desired` does
 * nothing), and reads `current` for `/v1/pools`.
 */
export interface PoolDriver {
  readonly name: 'local' | 'kubernetes' | 'external';
  /** What the driver runs for the role now (processes, replicas); null when it has no say (external). */
  current(role: string): Promise<number | null>;
  /** Brings the role's pool to `desired` (or starts doing so: a drain takes time). */
  scale(role: string, desired: number): Promise<void>;
  /** On scaler shutdown; `leader` says whether this replica held the lease (and so owns what the driver started). */
  close(leader: boolean): Promise<void>;
}
