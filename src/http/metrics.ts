import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Database } from '../db/index.js';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

const httpDuration = new Histogram({
  name: 'http_request_duration_seconds',
  help: 'HTTP request duration by method, route template and status',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [registry],
});

export const signInCounter = new Counter({
  name: 'idp_sign_ins_total',
  help: 'Password sign-in attempts by outcome',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const consentCounter = new Counter({
  name: 'idp_consents_total',
  help: 'Consent decisions by outcome',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const tokensIssuedCounter = new Counter({
  name: 'idp_tokens_issued_total',
  help: 'Tokens issued by kind',
  labelNames: ['kind'] as const,
  registers: [registry],
});

export function observeHttpRequest(method: string, route: string, status: number, seconds: number): void {
  httpDuration.observe({ method, route, status: String(status) }, seconds);
}

/** Pool gauges read at scrape time. */
export function registerDatabaseMetrics(db: Database): void {
  registry.removeSingleMetric('idp_db_pool_connections');
  new Gauge({
    name: 'idp_db_pool_connections',
    help: 'Database pool connections by state',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      this.set({ state: 'total' }, db.pool.totalCount);
      this.set({ state: 'idle' }, db.pool.idleCount);
      this.set({ state: 'waiting' }, db.pool.waitingCount);
    },
  });
}
