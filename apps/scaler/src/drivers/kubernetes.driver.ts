/**
 * `kubernetes`: each pool is a Deployment (`muse-agent-<role>` by default)
 * whose replicas the scaler sets through the scale subresource, with the
 * official client. The cluster comes from the usual places (`KUBECONFIG`, or
 * the in-cluster service account) via `KubeConfig.loadFromDefault`; the
 * Deployment's pods drain on SIGTERM like any worker (give them a
 * `terminationGracePeriodSeconds` above `MUSE_SHUTDOWN_GRACE_MS`).
 */
import { AppsV1Api, KubeConfig } from '@kubernetes/client-node';
import { MuseError } from '@muse/contracts';
import type { PoolDriver } from './pool-driver.js';

export interface KubernetesDriverOptions {
  kubeConfig?: KubeConfig;
  namespace: string;
  /** Deployment name with `{role}` in it. */
  deployment: string;
}

export class KubernetesDriver implements PoolDriver {
  readonly name = 'kubernetes' as const;
  private readonly api: AppsV1Api;

  constructor(private readonly opts: KubernetesDriverOptions) {
    const kc = opts.kubeConfig ?? new KubeConfig();
    if (!opts.kubeConfig) kc.loadFromDefault();
    this.api = kc.makeApiClient(AppsV1Api);
  }

  deploymentOf(role: string): string {
    return this.opts.deployment.replaceAll('{role}', role);
  }

  async current(role: string): Promise<number | null> {
    const scale = await this.read(role);
    return scale.status?.replicas ?? 0;
  }

  async scale(role: string, desired: number): Promise<void> {
    const name = this.deploymentOf(role);
    const scale = await this.read(role);
    if (scale.spec?.replicas === desired) return;
    try {
      await this.api.replaceNamespacedDeploymentScale({
        name,
        namespace: this.opts.namespace,
        body: { apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name, namespace: this.opts.namespace }, spec: { replicas: desired } },
      });
    } catch (err) {
      throw new MuseError('MUSE_ERR_SCALER_DRIVER', `kubernetes: cannot scale deployment ${this.opts.namespace}/${name} to ${desired}: ${(err as Error).message}`, { cause: err });
    }
  }

  async close(): Promise<void> {}

  private async read(role: string) {
    const name = this.deploymentOf(role);
    try {
      return await this.api.readNamespacedDeploymentScale({ name, namespace: this.opts.namespace });
    } catch (err) {
      throw new MuseError('MUSE_ERR_SCALER_DRIVER', `kubernetes: cannot read the scale of deployment ${this.opts.namespace}/${name}: ${(err as Error).message}`, { cause: err });
    }
  }
}
