/** `GET /v1/pools`: the schemas live in contracts, since the gateway serves the same list. */
export { PoolDecisionSchema, PoolListSchema, PoolViewSchema } from '@muse/contracts';
export type { PoolDecision, PoolList, PoolView } from '@muse/contracts';
