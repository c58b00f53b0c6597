/**
 * Least-privilege NATS permissions of each Muse service, and the
 * nats-server configuration that gives every service its own user.
 *
 * Built from `museNames(namespace)`, so a renamed or added stream, subject
 * or command kind is reflected the next time the config is generated
 * (`node scripts/nats-config.mjs`; `infra/nats/nats-server.conf` is its
 * output for the namespace `muse`, and a test keeps the two equal).
 *
 * What the JetStream client needs besides the data subjects (nats-server
 * 2.9+ API): every JetStream call is a request on `$JS.API.…` answered on
 * the caller's `_INBOX.…`; a JetStream publish is a request on the data
 * subject whose ack comes back on the inbox; pull consumers ask for messages
 * on `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` and ack on
 * `$JS.ACK.<stream>.…`.
 */
import { COMMAND_KINDS, type CommandKind, type MuseNames } from '@muse/contracts';

/** The roles that get a user: one per service, plus `admin` for operators (streams, purge, the `nats` CLI). */
export const NATS_SERVICE_ROLES = ['gateway', 'coordinator', 'agent-worker', 'artifact-store', 'observability', 'scaler'] as const;
export type NatsServiceRole = (typeof NATS_SERVICE_ROLES)[number];

export interface NatsPermissions {
  publish: string[];
  subscribe: string[];
  /** May answer requests (publish once to a request's reply subject). */
  allowResponses: boolean;
}

/** Creating and reading the two streams: every service ensures them at boot (idempotent), so none depends on another having started first. */
function streamSetup(n: MuseNames): string[] {
  const out = ['$JS.API.INFO'];
  for (const s of [n.runsStream, n.commandStream]) out.push(...streamOwner(s));
  return out;
}

/** Short-lived (ordered) consumers on stream `s`: made, read, looked at and deleted. */
function ephemeralConsumers(s: string): string[] {
  return [`$JS.API.CONSUMER.CREATE.${s}`, `$JS.API.CONSUMER.CREATE.${s}.>`, `$JS.API.CONSUMER.INFO.${s}.>`, `$JS.API.CONSUMER.DELETE.${s}.>`, `$JS.API.CONSUMER.MSG.NEXT.${s}.>`];
}

/** Direct gets (last message by subject) on stream `s`. */
function directGet(s: string): string[] {
  return [`$JS.API.DIRECT.GET.${s}`, `$JS.API.DIRECT.GET.${s}.>`];
}

/** Creating (or bringing up to date) and looking at stream `s`. */
function streamOwner(s: string): string[] {
  return [`$JS.API.STREAM.INFO.${s}`, `$JS.API.STREAM.CREATE.${s}`, `$JS.API.STREAM.UPDATE.${s}`];
}

/** Reading run logs: last message by subject, and short-lived ordered consumers. */
function runReader(n: MuseNames): string[] {
  const s = n.runsStream;
  return [`$JS.API.STREAM.MSG.GET.${s}`, ...directGet(s), ...ephemeralConsumers(s)];
}

/** The gateway's audit stream: created, written and read (short-lived ordered consumers) only by the gateway. */
function auditLog(n: MuseNames): string[] {
  const s = n.auditStream;
  return [...streamOwner(s), ...ephemeralConsumers(s), n.auditSubjectWildcard];
}

/**
 * The artifact store's NATS Object Store bucket (`MUSE_ARTIFACT_BACKEND=nats`): its stream `OBJ_<bucket>` (made,
 * read by direct get and short-lived ordered consumers, purged chunk by chunk on delete) and its `$O.<bucket>.>`
 * chunk and metadata subjects. Never deleting the stream.
 */
function objectStore(n: MuseNames): string[] {
  const s = `OBJ_${n.artifactBucket}`;
  return [...streamOwner(s), `$JS.API.STREAM.PURGE.${s}`, `$JS.API.STREAM.MSG.GET.${s}`, ...directGet(s), ...ephemeralConsumers(s), `$O.${n.artifactBucket}.>`];
}

/** The coordinator's durable consumer on the command stream. */
function commandConsumer(n: MuseNames): string[] {
  const s = n.commandStream;
  const d = n.coordinatorConsumer;
  return [
    `$JS.API.CONSUMER.INFO.${s}.${d}`,
    `$JS.API.CONSUMER.CREATE.${s}.${d}`,
    `$JS.API.CONSUMER.CREATE.${s}.${d}.>`,
    `$JS.API.CONSUMER.DURABLE.CREATE.${s}.${d}`,
    `$JS.API.CONSUMER.MSG.NEXT.${s}.${d}`,
    `$JS.ACK.${s}.${d}.>`,
  ];
}

/** Commands only Muse itself issues: worker reports, and the coordinator's own timers (`run-timeout`). */
const INTERNAL_COMMAND_KINDS: ReadonlySet<string> = new Set([COMMAND_KINDS.stepReport, COMMAND_KINDS.runTimeout, COMMAND_KINDS.concurrencyGrant, COMMAND_KINDS.leaseGrant]);

/** What clients (through the gateway) may ask for: every other command kind, so a new one follows COMMAND_KINDS. */
function clientCommandKinds(): CommandKind[] {
  return Object.values(COMMAND_KINDS).filter((k) => !INTERNAL_COMMAND_KINDS.has(k));
}

/** Replies to every request and JetStream call land on the caller's inbox. */
const INBOX = '_INBOX.>';

/** What `role` may publish and subscribe to, in namespace `names`. */
export function servicePermissions(role: NatsServiceRole, names: MuseNames): NatsPermissions {
  const p = ownPermissions(role, names);
  // Profiling sessions: every process listens to the control subject and answers on the report subject; the gateway runs them.
  const gateway = role === 'gateway';
  return {
    ...p,
    publish: [...p.publish, names.profilingReportSubject, ...(gateway ? [names.profilingControlSubject] : [])],
    subscribe: [...p.subscribe, names.profilingControlSubject, ...(gateway ? [names.profilingReportSubject] : [])],
  };
}

function ownPermissions(role: NatsServiceRole, names: MuseNames): NatsPermissions {
  const base = streamSetup(names);
  switch (role) {
    case 'gateway':
      return {
        publish: [
          ...base,
          ...runReader(names),
          ...clientCommandKinds().map((k) => names.commandSubject(k)),
          ...auditLog(names),
          // For the remote agents connected to it (`/v1/agents/connect`): their step reports, heartbeats and live progress.
          names.commandSubject(COMMAND_KINDS.stepReport),
          names.agentHeartbeatSubject,
          names.stepProgressSubjectWildcard,
        ],
        // Live step progress, forwarded to WebSocket subscribers; trigger messages (`on: {subject}`), answered with the runs they started;
        // run-stop notices, passed on to the remote agents running the run's steps.
        subscribe: [INBOX, names.stepProgressSubjectWildcard, names.triggerSubjectWildcard, names.runStopSubjectWildcard],
        allowResponses: true,
      };
    case 'coordinator':
      return {
        // The coordinator owns the command stream: it may re-issue any command (e.g. to itself).
        // And the audit subjects: every state transition is also an audit record.
        publish: [...base, ...runReader(names), ...commandConsumer(names), names.runSubjectWildcard, names.commandSubjectWildcard, names.artifactCommitSubject, names.runStopSubjectWildcard, names.auditSubjectWildcard],
        subscribe: [INBOX],
        allowResponses: false,
      };
    case 'agent-worker':
      return {
        publish: [...base, names.commandSubject(COMMAND_KINDS.stepReport), names.agentHeartbeatSubject, names.stepProgressSubjectWildcard],
        // Run-stop notices: a cancelled (or failed) run's steps are stopped.
        subscribe: [INBOX, names.runStopSubjectWildcard],
        allowResponses: false,
      };
    case 'artifact-store':
      // Run logs are read for lineage (GET /v1/artifacts/{id}/lineage).
      return { publish: [...base, ...runReader(names), ...objectStore(names)], subscribe: [INBOX, names.artifactCommitSubject], allowResponses: true };
    case 'observability':
      return { publish: [...base, ...runReader(names)], subscribe: [INBOX, names.agentHeartbeatSubject], allowResponses: false };
    case 'scaler': {
      // Its own decision stream: created, written and read (by sequence) only by the scaler.
      const st = names.scalerStream;
      const own = [`$JS.API.STREAM.INFO.${st}`, `$JS.API.STREAM.CREATE.${st}`, `$JS.API.STREAM.UPDATE.${st}`, `$JS.API.STREAM.MSG.GET.${st}`, names.scalerDecisionSubject];
      return { publish: [...base, ...own], subscribe: [INBOX, names.agentHeartbeatSubject], allowResponses: false };
    }
  }
}

/** A service's NATS identity: a user and password, or an nkey (its public key; the service holds the seed). */
export type NatsUserEntry =
  | {
      role: NatsServiceRole | 'admin';
      user: string;
      /**
       * The password: a literal (or a bcrypt hash, `$2a$…`), or a reference to an
       * environment variable of the nats-server process written `$NAME` (so the
       * file holds no secret).
       */
      password: string;
    }
  | {
      role: NatsServiceRole | 'admin';
      /** The user's public nkey (`U…`, from `nk -gen user -pubout`); the service signs the server's challenge with its seed (`NATS_NKEY_SEED_FILE`). */
      nkey: string;
    };

export interface NatsServerConfigOptions {
  names: MuseNames;
  users: NatsUserEntry[];
  /** @default 4222 */
  port?: number;
  /** Monitoring port (`/healthz`); unset = off. */
  httpPort?: number;
  /** JetStream storage folder; unset = the server's default (or `-sd`). */
  storeDir?: string;
  /** Server TLS: PEM files; `verify` makes clients present a certificate signed by `ca`. */
  tls?: { cert: string; key: string; ca?: string; verify?: boolean };
}

/** An environment-variable reference as nats-server reads it (unquoted `$NAME`). */
const ENV_REF = /^\$[A-Za-z_][A-Za-z0-9_]*$/;

const q = (s: string): string => JSON.stringify(s);
const list = (xs: string[], indent: string): string => `[\n${xs.map((x) => `${indent}  ${q(x)}`).join(',\n')}\n${indent}]`;

/** The text of a nats-server configuration (2.9 and later) with one user per entry of `users`. */
export function natsServerConfig(o: NatsServerConfigOptions): string {
  const lines: string[] = [
    `# Generated by scripts/nats-config.mjs for the namespace "${o.names.namespace}"; regenerate rather than edit.`,
    '# One user per service, each allowed only the subjects its role needs (libs/messaging/src/nats-permissions.ts).',
    '# Passwords written $NAME are read from the nats-server environment.',
    `port: ${o.port ?? 4222}`,
  ];
  if (o.httpPort !== undefined) lines.push(`http_port: ${o.httpPort}`);
  lines.push(o.storeDir !== undefined ? `jetstream { store_dir: ${q(o.storeDir)} }` : 'jetstream {}');
  if (o.tls) {
    lines.push('tls {', `  cert_file: ${q(o.tls.cert)}`, `  key_file: ${q(o.tls.key)}`);
    if (o.tls.ca !== undefined) lines.push(`  ca_file: ${q(o.tls.ca)}`);
    if (o.tls.verify) lines.push('  verify: true');
    lines.push('}');
  }
  lines.push('authorization {', '  users: [');
  const entries = o.users.map((u) => {
    const who = 'nkey' in u ? `nkey: ${q(u.nkey)}` : `user: ${q(u.user)}, password: ${ENV_REF.test(u.password) ? u.password : q(u.password)}`;
    if (u.role === 'admin') return `    # admin: everything (operators, stream maintenance)\n    { ${who} }`;
    const p = servicePermissions(u.role, o.names);
    const ind = '        ';
    return [
      `    # ${u.role}`,
      `    { ${who}, permissions: {`,
      `      publish: { allow: ${list(p.publish, ind)} }`,
      `      subscribe: { allow: ${list(p.subscribe, ind)} }`,
      ...(p.allowResponses ? ['      allow_responses: true'] : []),
      '    } }',
    ].join('\n');
  });
  lines.push(entries.join(',\n'), '  ]', '}');
  return `${lines.join('\n')}\n`;
}
