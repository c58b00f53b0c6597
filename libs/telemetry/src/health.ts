/** Readiness checks a service registers; `/health/ready` runs them all. */
export type ReadinessCheck = () => Promise<void>;

export class Readiness {
  private readonly checks = new Map<string, ReadinessCheck>();
  private draining = false;

  add(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  /** Once draining, the service reports not ready so load balancers stop sending work. */
  startDraining(): void {
    this.draining = true;
  }

  async run(): Promise<{ ok: boolean; checks: Record<string, string> }> {
    const checks: Record<string, string> = {};
    let ok = !this.draining;
    if (this.draining) checks.shutdown = 'draining';
    for (const [name, check] of this.checks) {
      try {
        await Promise.race([check(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout after 2000 ms')), 2000).unref())]);
        checks[name] = 'ok';
      } catch (err) {
        ok = false;
        checks[name] = err instanceof Error ? err.message : String(err);
      }
    }
    return { ok, checks };
  }
}
