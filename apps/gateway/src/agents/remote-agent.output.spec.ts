import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentOutputSchema, RemoteAgentClientMessageSchema, ShellOutputSchema } from '@muse/contracts';
import { remoteFailure, remoteOutputArtifact, remoteStepOutput } from './remote-agent.output.js';

test('an agent step answered remotely reads like a local one: text, model (the step\'s unless the agent names one), usage', () => {
  const out = remoteStepOutput({ kind: 'agent', model: 'muse-local' }, { text: 'LGTM', exitCode: 0 });
  assert.deepEqual(out, { text: 'LGTM', model: 'muse-local', usage: { inputTokens: 0, outputTokens: 0 }, exitCode: 0 });
  AgentOutputSchema.parse(out);
  assert.deepEqual(remoteStepOutput({ kind: 'agent' }, { text: 'x', model: 'claude', usage: { inputTokens: 5, outputTokens: 7 } }), { text: 'x', model: 'claude', usage: { inputTokens: 5, outputTokens: 7 } });
  assert.equal((remoteStepOutput({ kind: 'agent' }, { text: 'x' }) as { model: string }).model, 'remote');
});

test('a shell step answered remotely is {exitCode, stdout, stderr}', () => {
  const out = remoteStepOutput({ kind: 'shell' }, { text: 'ok\n' });
  assert.deepEqual(out, { exitCode: 0, stdout: 'ok\n', stderr: '' });
  ShellOutputSchema.parse(out);
});

test('the output artifact names the remote agent as its producer', () => {
  const a = remoteOutputArtifact({ kind: 'agent' }, { text: 'hé' }, 'laptop');
  assert.deepEqual([a.name, a.mediaType, Buffer.from(a.bytes).toString('utf8'), a.tool, a.toolVersion], ['response.md', 'text/markdown', 'hé', 'remote-agent', 'laptop']);
  assert.equal(remoteOutputArtifact({ kind: 'shell' }, { text: 'x' }, 'ci').name, 'stdout.txt');
});

test('a failure keeps a catalogue code and the agent\'s retryability; any other code becomes MUSE_ERR_AGENT_FAILED', () => {
  assert.deepEqual(remoteFailure({ code: 'MUSE_ERR_STEP_EXIT_NONZERO', message: 'sh exited with 2', details: { exitCode: 2 } }), {
    code: 'MUSE_ERR_STEP_EXIT_NONZERO',
    message: 'sh exited with 2',
    retryable: true,
    details: { exitCode: 2 },
  });
  assert.deepEqual(remoteFailure({ code: 'TOOL_MISSING', message: 'no git', retryable: false }), { code: 'MUSE_ERR_AGENT_FAILED', message: 'no git', retryable: false, details: { agentCode: 'TOOL_MISSING' } });
  assert.deepEqual(remoteFailure({ message: '' }), { code: 'MUSE_ERR_AGENT_FAILED', message: 'The remote agent reported that the step failed', retryable: true });
});

test('the protocol refuses unknown fields and a hello without roles', () => {
  assert.equal(RemoteAgentClientMessageSchema.safeParse({ type: 'hello', name: 'a', roles: [] }).success, false);
  assert.equal(RemoteAgentClientMessageSchema.safeParse({ type: 'complete', assignmentId: 'x', output: { text: 'a', extra: 1 } }).success, false);
  const hello = RemoteAgentClientMessageSchema.parse({ type: 'hello', name: 'a', roles: ['reviewer'] });
  assert.deepEqual(hello, { type: 'hello', name: 'a', roles: ['reviewer'], capabilities: [], concurrency: 1 });
});
