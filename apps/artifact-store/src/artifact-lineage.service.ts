/**
 * `GET /v1/artifacts/{id}/lineage`: which steps an artifact came from and
 * which it went into, derived from the run's own event log — the definition
 * (`run.created`, its `needs`), the queued attempts (`step.queued`: a step is
 * queued only once every step it needs has succeeded, so queuing is when it
 * consumes their outputs) and the committed artifacts (`step.completed`). The
 * log is the truth, so lineage needs no second write path that could drift.
 *
 * Nodes carry their `runId` so that child runs (sub-workflows, when they
 * land) join the same walk: a step that starts a child run will add an edge
 * into the child's log.
 */
import { stepNeeds, type ArtifactLineage, type ArtifactMeta, type RunEvent, type WorkflowDefinition } from '@muse/contracts';
import type { ArtifactRepository } from '@muse/artifacts';

type LineageNode = ArtifactLineage['upstream'][number];
type Consumer = NonNullable<ArtifactMeta['consumers']>[number];

/** What lineage needs from one run's log. */
export interface RunFacts {
  runId: string;
  definition: WorkflowDefinition | undefined;
  /** Queued attempts per step, in order. */
  queued: Map<string, number[]>;
  /** The completed attempt of each step and the ids of the artifacts it committed. */
  completed: Map<string, { attempt: number; artifactIds: string[] }>;
}

export function runFacts(runId: string, events: RunEvent[]): RunFacts {
  const facts: RunFacts = { runId, definition: undefined, queued: new Map(), completed: new Map() };
  for (const ev of events) {
    if (ev.type === 'run.created') facts.definition = ev.data.definition;
    else if (ev.type === 'step.queued') facts.queued.set(ev.data.stepId, [...(facts.queued.get(ev.data.stepId) ?? []), ev.data.attempt]);
    else if (ev.type === 'step.completed') facts.completed.set(ev.data.stepId, { attempt: ev.data.attempt, artifactIds: ev.data.artifacts.map((a) => a.id) });
  }
  return facts;
}

/** Steps that read `stepId`'s output directly, with every attempt that was queued. */
export function consumersOf(facts: RunFacts, stepId: string): Consumer[] {
  const out: Consumer[] = [];
  for (const s of facts.definition?.steps ?? []) {
    if (!stepNeeds(s).includes(stepId)) continue;
    for (const attempt of facts.queued.get(s.id) ?? []) out.push({ runId: facts.runId, stepId: s.id, attempt });
  }
  return out;
}

/** The lineage of `artifact` in its run: breadth-first, nearest steps first. */
export function buildLineage(artifact: ArtifactMeta, facts: RunFacts, metas: Map<string, ArtifactMeta>): ArtifactLineage {
  const steps = new Map((facts.definition?.steps ?? []).map((s) => [s.id, s]));
  const dependents = new Map<string, string[]>();
  for (const s of steps.values()) for (const n of stepNeeds(s)) dependents.set(n, [...(dependents.get(n) ?? []), s.id]);

  const node = (stepId: string): LineageNode => {
    const done = facts.completed.get(stepId);
    const attempts = facts.queued.get(stepId) ?? [];
    return {
      runId: facts.runId,
      stepId,
      attempt: done?.attempt ?? attempts.at(-1) ?? 0,
      artifacts: (done?.artifactIds ?? []).flatMap((id) => (metas.has(id) ? [metas.get(id)!] : [])),
      inputs: stepNeeds(steps.get(stepId) ?? {}),
    };
  };
  const walk = (next: (id: string) => string[], include: (id: string) => boolean): LineageNode[] => {
    const seen = new Set([artifact.stepId]);
    const out: LineageNode[] = [];
    let frontier = next(artifact.stepId);
    while (frontier.length > 0) {
      const following: string[] = [];
      for (const id of frontier) {
        if (seen.has(id)) continue;
        seen.add(id);
        if (!include(id)) continue;
        out.push(node(id));
        following.push(...next(id));
      }
      frontier = following;
    }
    return out;
  };
  return {
    artifact: { ...artifact, consumers: consumersOf(facts, artifact.stepId) },
    // Upstream: what the producing step needed, transitively.
    upstream: walk((id) => stepNeeds(steps.get(id) ?? {}), () => true),
    // Downstream: steps that needed it, transitively — only those that were actually queued (a skipped or never-reached step consumed nothing).
    downstream: walk((id) => dependents.get(id) ?? [], (id) => facts.queued.has(id)),
    runs: [facts.runId],
  };
}

export class ArtifactLineageService {
  constructor(
    private readonly repo: Pick<ArtifactRepository, 'getMany'>,
    private readonly readRun: (runId: string) => Promise<RunEvent[]>,
  ) {}

  async lineage(artifact: ArtifactMeta): Promise<ArtifactLineage> {
    const facts = runFacts(artifact.runId, await this.readRun(artifact.runId));
    const ids = [...facts.completed.values()].flatMap((c) => c.artifactIds);
    const metas = new Map((await this.repo.getMany(ids)).map((m) => [m.id, m]));
    metas.set(artifact.id, artifact);
    return buildLineage(artifact, facts, metas);
  }

  /** The artifact with its consumers filled in. */
  async withConsumers(artifact: ArtifactMeta): Promise<ArtifactMeta> {
    const facts = runFacts(artifact.runId, await this.readRun(artifact.runId));
    return { ...artifact, consumers: consumersOf(facts, artifact.stepId) };
  }
}
