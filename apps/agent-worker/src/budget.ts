/**
 * Per-run token and cost budgets, shared by every worker through one Redis
 * hash per run (`<ns>:run-budget:<runId>`). Each model call reserves its
 * estimate (prompt tokens + the output cap) before it runs and settles to its
 * real usage after; both are single Lua scripts, so two workers can never both
 * take the last room.
 *
 * The rule: a call is let through only while `spent + reserved` is below the
 * limit. Every call let through therefore starts under the limit, and once it
 * settles (to at most its reservation, when the estimate bounds the output)
 * the run is over the limit by at most that one reservation, however many
 * agents of the run call at once.
 *
 * Limits come with each job (the workflow's budget plus `POST /budget`
 * raises) and only ever grow in the hash, so a job queued before a raise
 * cannot lower them again. A reservation a crashed worker never settled lapses
 * at its deadline (the step's timeout), so it cannot hold the budget forever.
 */
import { MuseError } from '@muse/contracts';

/** What one call asks for: tokens and USD, estimated before it runs. */
export interface BudgetEstimate {
  tokens: number;
  cost: number;
}

export interface BudgetLimits {
  maxTokens?: number;
  maxCost?: number;
}

export interface BudgetState {
  spentTokens: number;
  reservedTokens: number;
  spentCost: number;
  reservedCost: number;
}

/** Redis hash fields; a reservation is `r:<id>` = `<tokens>:<cost>:<deadline ms>`. */
const RESERVE_LUA = `
local k = KEYS[1]
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local function raise(field, v)
  if v == '' then return end
  local cur = tonumber(redis.call('HGET', k, field) or '-1')
  if tonumber(v) > cur then redis.call('HSET', k, field, v) end
end
raise('maxTokens', ARGV[1])
raise('maxCost', ARGV[2])
-- reservations whose worker never settled them (it died) lapse at their deadline
local all = redis.call('HGETALL', k)
for i = 1, #all, 2 do
  local f = all[i]
  if string.sub(f, 1, 2) == 'r:' then
    local t, c, d = string.match(all[i + 1], '^([^:]+):([^:]+):([^:]+)$')
    if tonumber(d) < nowMs then
      redis.call('HINCRBY', k, 'reservedTokens', -tonumber(t))
      redis.call('HINCRBYFLOAT', k, 'reservedCost', -tonumber(c))
      redis.call('HDEL', k, f)
    end
  end
end
local id = 'r:' .. ARGV[3]
local spentT = tonumber(redis.call('HGET', k, 'spentTokens') or '0')
local resT = tonumber(redis.call('HGET', k, 'reservedTokens') or '0')
local spentC = tonumber(redis.call('HGET', k, 'spentCost') or '0')
local resC = tonumber(redis.call('HGET', k, 'reservedCost') or '0')
local state = { tostring(spentT), tostring(resT), tostring(spentC), tostring(resC) }
if redis.call('HEXISTS', k, id) == 1 then return { 'reserved', unpack(state) } end
local maxT = tonumber(redis.call('HGET', k, 'maxTokens') or '')
local maxC = tonumber(redis.call('HGET', k, 'maxCost') or '')
if maxT and spentT + resT >= maxT then return { 'tokens', unpack(state) } end
if maxC and spentC + resC >= maxC then return { 'cost', unpack(state) } end
redis.call('HINCRBY', k, 'reservedTokens', tonumber(ARGV[4]))
redis.call('HINCRBYFLOAT', k, 'reservedCost', tonumber(ARGV[5]))
redis.call('HSET', k, id, ARGV[4] .. ':' .. ARGV[5] .. ':' .. tostring(nowMs + tonumber(ARGV[6])))
redis.call('PEXPIRE', k, tonumber(ARGV[7]))
return { 'reserved', unpack(state) }
`;

/** Gives a reservation back and books what the call really used (0 and 0 for a call that failed). Settling twice is a no-op. */
const SETTLE_LUA = `
local k = KEYS[1]
local id = 'r:' .. ARGV[1]
local r = redis.call('HGET', k, id)
if not r then return 0 end
local t, c = string.match(r, '^([^:]+):([^:]+):')
redis.call('HINCRBY', k, 'reservedTokens', -tonumber(t))
redis.call('HINCRBYFLOAT', k, 'reservedCost', -tonumber(c))
redis.call('HINCRBY', k, 'spentTokens', tonumber(ARGV[2]))
redis.call('HINCRBYFLOAT', k, 'spentCost', tonumber(ARGV[3]))
redis.call('HDEL', k, id)
return 1
`;

/** How long a run's budget hash outlives its last reservation, in ms. @default 7 days */
const BUDGET_KEY_TTL_MS = 7 * 24 * 3600_000;

export interface BudgetRedis {
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

export class RunBudgets {
  constructor(
    private readonly redis: BudgetRedis,
    private readonly key: (runId: string) => string,
    private readonly observer?: { reservation(outcome: 'reserved' | 'refused'): void },
  ) {}

  /**
   * Reserves `est` for call `callId` of the run, or throws `MUSE_ERR_BUDGET_EXCEEDED` (not retryable) when the run
   * has used its budget. @param holdMs how long the reservation may stay unsettled (the step's timeout).
   */
  async reserve(runId: string, callId: string, est: BudgetEstimate, limits: BudgetLimits, holdMs: number): Promise<void> {
    const res = (await this.redis.eval(
      RESERVE_LUA,
      1,
      this.key(runId),
      limits.maxTokens !== undefined ? String(limits.maxTokens) : '',
      limits.maxCost !== undefined ? String(limits.maxCost) : '',
      callId,
      String(Math.max(0, Math.ceil(est.tokens))),
      String(Math.max(0, est.cost)),
      String(Math.max(1000, holdMs)),
      String(BUDGET_KEY_TTL_MS),
    )) as string[];
    const [outcome, spentTokens, reservedTokens, spentCost, reservedCost] = res;
    if (outcome === 'reserved') {
      this.observer?.reservation('reserved');
      return;
    }
    this.observer?.reservation('refused');
    const state = { spentTokens: Number(spentTokens), reservedTokens: Number(reservedTokens), spentCost: Number(spentCost), reservedCost: Number(reservedCost) };
    const what = outcome === 'tokens' ? `${state.spentTokens} tokens spent and ${state.reservedTokens} reserved of ${limits.maxTokens}` : `$${state.spentCost.toFixed(6)} spent and $${state.reservedCost.toFixed(6)} reserved of $${limits.maxCost}`;
    throw new MuseError('MUSE_ERR_BUDGET_EXCEEDED', `run ${runId} has used its ${outcome === 'tokens' ? 'token' : 'cost'} budget: ${what}`, {
      details: { runId, limit: outcome, ...limits, ...state, estimate: est },
    });
  }

  /** Books the call's real usage in place of its reservation (`used` 0/0 when the call failed). */
  async settle(runId: string, callId: string, used: BudgetEstimate): Promise<void> {
    await this.redis.eval(SETTLE_LUA, 1, this.key(runId), callId, String(Math.max(0, Math.round(used.tokens))), String(Math.max(0, used.cost)));
  }
}
