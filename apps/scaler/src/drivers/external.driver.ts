/**
 * `external`: the scaler only decides and exports `muse_scaler_desired_workers`;
 * KEDA or an HPA acts on it (examples in `infra/k8s/`).
 */
import type { PoolDriver } from './pool-driver.js';

export class ExternalDriver implements PoolDriver {
  readonly name = 'external' as const;
  async current(): Promise<null> {
    return null;
  }
  async scale(): Promise<void> {}
  async close(): Promise<void> {}
}
