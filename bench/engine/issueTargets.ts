/**
 * The engine issue's targets, and the figures it quotes for the two PostgreSQL job queues it compares with:
 * the engine bench prints its verdicts against them, the versus bench the same targets as ratios.
 */
export const TARGETS = { linearP50Ms: 7, linearP99Ms: 20, diamondsPerSecond: 300, oneStepPerSecond: 1500 };
export const COMPETITORS = [
  { name: 'graphile-worker', linearP50Ms: 6.8, diamondsPerSecond: 225, oneStepPerSecond: 865 },
  { name: 'pg-boss', linearP50Ms: 10.1, diamondsPerSecond: 278, oneStepPerSecond: 1549 },
] as const;
