import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AnthropicProvider } from './anthropic-provider.js';
import { LocalDeterministicProvider } from './local-provider.js';
import { OpenAiCompatibleProvider } from './openai-provider.js';
import type { ModelProvider } from './provider.js';
import { FakeModelServer, type FakeProtocol } from './testing/index.js';
import { nextScriptedRound, parseToolCallScript, type ConversationTurn, type ToolSpec } from './tool-calls.js';

const HTTP_TOOL: ToolSpec = {
  name: 'http',
  description: 'fetch a URL',
  parameters: { type: 'object', properties: { method: { type: 'string' }, url: { type: 'string' } }, required: ['method', 'url'] },
};

const PROMPT = [
  'Check both services, then summarize.',
  '::tool-call http {"method":"GET","url":"https://a.example/health"}',
  '::tool-call http {"method":"GET","url":"https://b.example/health"}',
  '',
  '::tool-call shell {"command":"echo done"}',
].join('\n');

describe('tool-call script', () => {
  test('rounds are runs of consecutive ::tool-call lines; broken JSON stays text', () => {
    assert.deepEqual(parseToolCallScript(PROMPT), [
      [
        { name: 'http', arguments: { method: 'GET', url: 'https://a.example/health' } },
        { name: 'http', arguments: { method: 'GET', url: 'https://b.example/health' } },
      ],
      [{ name: 'shell', arguments: { command: 'echo done' } }],
    ]);
    assert.deepEqual(parseToolCallScript('::tool-call http {not json'), [[{ name: 'http', arguments: '{not json' }]]);
    assert.deepEqual(parseToolCallScript('no script here'), []);
  });

  test('the next round counts the rounds already answered', () => {
    assert.deepEqual(nextScriptedRound(PROMPT, [])?.map((c) => c.id), ['call_1_1', 'call_1_2']);
    const turns: ConversationTurn[] = [
      { role: 'assistant', text: '', toolCalls: nextScriptedRound(PROMPT, [])! },
      { role: 'tool', results: [] },
    ];
    assert.deepEqual(nextScriptedRound(PROMPT, turns), [{ id: 'call_2_1', name: 'shell', arguments: { command: 'echo done' } }]);
    turns.push({ role: 'assistant', text: '', toolCalls: nextScriptedRound(PROMPT, turns)! }, { role: 'tool', results: [] });
    assert.equal(nextScriptedRound(PROMPT, turns), undefined);
  });
});

/** Plays the script to its end against a provider, answering every call with a canned result. */
async function playScript(provider: ModelProvider): Promise<{ rounds: string[][]; final: string }> {
  const turns: ConversationTurn[] = [];
  const rounds: string[][] = [];
  for (let i = 0; i < 5; i++) {
    const res = await provider.complete({ model: 'm-1', prompt: PROMPT, tools: [HTTP_TOOL, { ...HTTP_TOOL, name: 'shell' }], turns: [...turns] });
    if (!res.toolCalls?.length) return { rounds, final: res.text };
    rounds.push(res.toolCalls.map((c) => `${c.name} ${JSON.stringify(c.arguments)}`));
    turns.push({ role: 'assistant', text: res.text, toolCalls: res.toolCalls });
    turns.push({ role: 'tool', results: res.toolCalls.map((c, j) => ({ callId: c.id, name: c.name, content: `{"status":${200 + j},"round":${i + 1}}`, ...(c.name === 'shell' ? { isError: true } : {}) })) });
  }
  throw new Error('the script did not end');
}

const EXPECTED_ROUNDS = [
  ['http {"method":"GET","url":"https://a.example/health"}', 'http {"method":"GET","url":"https://b.example/health"}'],
  ['shell {"command":"echo done"}'],
];

test('deterministic provider: asks for the scripted calls, then answers quoting every result', async () => {
  const p = new LocalDeterministicProvider();
  const { rounds, final } = await playScript(p);
  assert.deepEqual(rounds, EXPECTED_ROUNDS);
  assert.match(final, /tool results:\ncall_1_1 http ok: \{"status":200,"round":1\}\ncall_1_2 http ok: \{"status":201,"round":1\}\ncall_2_1 shell error: \{"status":200,"round":2\}$/);
  // Deterministic: the same conversation gives the same answer.
  assert.equal((await playScript(p)).final, final);
  // Without tools offered, the script is just text.
  const plain = await p.complete({ model: 'm-1', prompt: PROMPT });
  assert.equal(plain.toolCalls, undefined);
});

for (const protocol of ['openai', 'anthropic'] as FakeProtocol[]) {
  describe(`${protocol} adapter: tool calls over the real wire protocol (SDK against a fake server)`, () => {
    let server: FakeModelServer;
    let provider: ModelProvider;
    before(async () => {
      server = await FakeModelServer.start(protocol, { apiKey: 'sk-test', chunkDelayMs: 1 });
      provider =
        protocol === 'openai'
          ? new OpenAiCompatibleProvider({ name: 'oa', baseUrl: server.baseUrl, apiKey: 'sk-test', timeoutMs: 5_000 })
          : new AnthropicProvider({ name: 'an', baseUrl: server.baseUrl, apiKey: 'sk-test', timeoutMs: 5_000 });
    });
    after(() => server.close());

    test('streamed calls are joined, results go back in the protocol’s shape, the answer quotes them', async () => {
      const first = server.requests.length;
      const { rounds, final } = await playScript(provider);
      assert.deepEqual(rounds, EXPECTED_ROUNDS);
      assert.match(final, new RegExp(`^${protocol} says: Check both services, then summarize\\.`));
      const callPrefix = protocol === 'openai' ? 'call' : 'toolu';
      assert.ok(final.includes(`${callPrefix}_1_1={"status":200,"round":1}`), final);
      assert.ok(final.includes(`${callPrefix}_2_1=ERROR {"status":200,"round":2}`) || final.includes(`${callPrefix}_2_1=ERROR: {"status":200,"round":2}`), final);

      const bodies = server.requests.slice(first).map((r) => r.body);
      assert.equal(bodies.length, 3);
      assert.equal(bodies[0]!['stream'], true);
      const tools = bodies[0]!['tools'] as Array<Record<string, any>>;
      if (protocol === 'openai') {
        assert.deepEqual(tools[0], { type: 'function', function: { name: 'http', description: 'fetch a URL', parameters: HTTP_TOOL.parameters } });
        const msgs = bodies[1]!['messages'] as Array<Record<string, any>>;
        assert.deepEqual(msgs.map((m) => m['role']), ['user', 'assistant', 'tool', 'tool']);
        assert.equal(msgs[1]!['tool_calls'][0].function.arguments, '{"method":"GET","url":"https://a.example/health"}');
        assert.deepEqual(msgs.slice(2).map((m) => m['tool_call_id']), ['call_1_1', 'call_1_2']);
        assert.match((bodies[2]!['messages'] as Array<Record<string, any>>).at(-1)!['content'], /^ERROR: /);
      } else {
        assert.deepEqual(tools[0], { name: 'http', description: 'fetch a URL', input_schema: HTTP_TOOL.parameters });
        const msgs = bodies[1]!['messages'] as Array<Record<string, any>>;
        assert.deepEqual(msgs.map((m) => m['role']), ['user', 'assistant', 'user']);
        assert.deepEqual(msgs[1]!['content'][0], { type: 'tool_use', id: 'toolu_1_1', name: 'http', input: { method: 'GET', url: 'https://a.example/health' } });
        assert.deepEqual(msgs[2]!['content'].map((b: any) => [b.type, b.tool_use_id]), [['tool_result', 'toolu_1_1'], ['tool_result', 'toolu_1_2']]);
        assert.equal((bodies[2]!['messages'] as Array<Record<string, any>>).at(-1)!['content'][0].is_error, true);
      }
    });

    test('an enqueued tool_calls behaviour answers with those calls whatever the prompt', async () => {
      server.enqueue({ kind: 'tool_calls', calls: [{ name: 'http', arguments: { method: 'POST', url: 'https://x.example/' } }] });
      const res = await provider.complete({ model: 'm-1', prompt: 'no script', tools: [HTTP_TOOL] });
      assert.equal(res.toolCalls?.length, 1);
      assert.deepEqual(res.toolCalls![0]!.arguments, { method: 'POST', url: 'https://x.example/' });
      assert.equal(res.text, '');
    });
  });
}
