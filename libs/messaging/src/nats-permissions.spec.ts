import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { museNames } from '@muse/contracts';
import { natsServerConfig, servicePermissions, NATS_SERVICE_ROLES } from './nats-permissions.js';

const names = museNames('muse');

describe('servicePermissions', () => {
  test('only the gateway publishes client commands; only workers (and the gateway, for remote agents) publish step reports and heartbeats', () => {
    const can = (role: (typeof NATS_SERVICE_ROLES)[number], subj: string) => servicePermissions(role, names).publish.includes(subj);
    assert.ok(can('gateway', names.commandSubject('run-submit')));
    // The gateway reports the steps of the remote agents connected to it (`/v1/agents/connect`), and beats for them.
    assert.ok(can('gateway', names.commandSubject('step-report')));
    assert.ok(can('gateway', names.agentHeartbeatSubject));
    for (const r of ['artifact-store', 'observability', 'scaler'] as const) assert.ok(!can(r, names.commandSubject('step-report')), r);
    assert.ok(can('agent-worker', names.commandSubject('step-report')));
    assert.ok(!can('agent-worker', names.commandSubject('run-submit')));
    assert.ok(can('agent-worker', names.agentHeartbeatSubject));
    for (const r of ['gateway', 'agent-worker', 'artifact-store', 'observability', 'scaler'] as const) assert.ok(!can(r, names.runSubjectWildcard), `${r} may not append run events`);
    assert.ok(can('coordinator', names.runSubjectWildcard));
    // Commands only Muse issues: the gateway (clients) may not grant concurrency slots or time runs out.
    for (const k of ['concurrency-grant', 'run-timeout'] as const) assert.ok(!can('gateway', names.commandSubject(k)), k);
    assert.ok(can('gateway', names.commandSubject('run-submit')));
  });
  test('only the artifact store subscribes to artifact commits; it and the gateway (trigger replies) answer requests', () => {
    for (const r of NATS_SERVICE_ROLES) {
      const p = servicePermissions(r, names);
      assert.equal(p.subscribe.includes(names.artifactCommitSubject), r === 'artifact-store', r);
      assert.equal(p.allowResponses, r === 'artifact-store' || r === 'gateway', r);
      assert.equal(p.subscribe.includes(names.triggerSubjectWildcard), r === 'gateway', r);
      assert.ok(p.subscribe.includes('_INBOX.>'));
      assert.ok(!p.publish.includes('>') && !p.publish.some((s) => s.startsWith('$JS.API.STREAM.DELETE')), r);
    }
  });
});

describe('natsServerConfig', () => {
  test('one user per entry; $VAR passwords stay unquoted references, literals are quoted', () => {
    const text = natsServerConfig({
      names,
      users: [
        { role: 'gateway', user: 'muse-gateway', password: '$MUSE_NATS_PASSWORD_GATEWAY' },
        { role: 'admin', user: 'muse-admin', password: 'p"w' },
      ],
      storeDir: '/data',
      httpPort: 8222,
    });
    assert.match(text, /user: "muse-gateway", password: \$MUSE_NATS_PASSWORD_GATEWAY, permissions/);
    assert.match(text, /user: "muse-admin", password: "p\\"w" }/);
    assert.match(text, /jetstream \{ store_dir: "\/data" \}/);
    assert.match(text, /http_port: 8222/);
    assert.ok(text.includes(`"${names.commandSubject('run-submit')}"`));
  });
});
