import Provider from 'oidc-provider';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { observeQueries, type Database } from '../db/index.js';
import { passwordWorkLoad } from '../security/password-work.js';

export const registry = new Registry();
// Includes nodejs_eventloop_lag_seconds (and its p50/p90/p99), heap, GC and CPU series.
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
  help: 'Tokens issued by kind (access_token, refresh_token, id_token, authorization_code) and grant type',
  labelNames: ['kind', 'grant_type'] as const,
  registers: [registry],
});

const tokenErrorCounter = new Counter({
  name: 'idp_token_errors_total',
  help: 'Token endpoint requests refused, by grant type and OAuth error code',
  labelNames: ['grant_type', 'error'] as const,
  registers: [registry],
});

const revocationCounter = new Counter({
  name: 'idp_revocations_total',
  help: 'Revocations: tokens revoked at the revocation endpoint by kind, and grants revoked for any reason (kind="grant")',
  labelNames: ['kind'] as const,
  registers: [registry],
});

const backchannelCounter = new Counter({
  name: 'idp_backchannel_logouts_total',
  help: 'Back-channel logout token deliveries by outcome',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

const queryDuration = new Histogram({
  name: 'idp_db_query_duration_seconds',
  help: 'Database statement latency as the app sees it (including the wait for a pooled connection), by statement kind and outcome',
  labelNames: ['operation', 'outcome'] as const,
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
});

new Gauge({
  name: 'idp_password_hashing',
  help: 'argon2 computations of this process by state: running (at most PASSWORD_HASHING_CONCURRENCY) and waiting in the queue',
  labelNames: ['state'] as const,
  registers: [registry],
  collect() {
    const load = passwordWorkLoad();
    this.set({ state: 'running' }, load.running);
    this.set({ state: 'waiting' }, load.waiting);
  },
});

export function observeHttpRequest(method: string, route: string, status: number, seconds: number): void {
  httpDuration.observe({ method, route, status: String(status) }, seconds);
}

/** Pool gauges read at scrape time, and the latency of every statement sent through `db`. */
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
  observeQueries((operation, seconds, failed) => queryDuration.observe({ operation, outcome: failed ? 'error' : 'ok' }, seconds));
}

const tokenKinds = ['access_token', 'refresh_token', 'id_token'] as const;

/**
 * Counts what oidc-provider does, from its events: tokens issued per grant type, token
 * errors, revocations and back-channel logout deliveries. Call once per provider.
 */
export function instrumentProvider(provider: Provider): void {
  provider.on('grant.success', (ctx) => {
    const grantType = String(ctx.oidc.params?.['grant_type'] ?? 'unknown');
    const body = (ctx.body ?? {}) as Record<string, unknown>;
    // A refresh that keeps its token (a confidential client's) answers with the same one: not issued.
    const kept = body['refresh_token'] !== undefined && body['refresh_token'] === ctx.oidc.params?.['refresh_token'];
    for (const kind of tokenKinds) {
      if (body[kind] && !(kind === 'refresh_token' && kept)) tokensIssuedCounter.inc({ kind, grant_type: grantType });
    }
  });
  provider.on('authorization_code.saved', () => tokensIssuedCounter.inc({ kind: 'authorization_code', grant_type: 'authorization_code' }));
  provider.on('grant.error', (ctx, error) => {
    const grantType = String(ctx.oidc?.params?.['grant_type'] ?? 'unknown');
    const code = (error as { error?: unknown }).error;
    tokenErrorCounter.inc({ grant_type: grantType, error: typeof code === 'string' ? code : 'server_error' });
  });
  // A model's `destroyed` event carries no context; the request's context tells whether
  // the revocation endpoint (not a refresh-token replay, say) destroyed it.
  const countRevoked = (kind: string) => () => {
    if (Provider.ctx?.oidc?.route === 'revocation') revocationCounter.inc({ kind });
  };
  provider.on('access_token.destroyed', countRevoked('access_token'));
  provider.on('refresh_token.destroyed', countRevoked('refresh_token'));
  provider.on('client_credentials.destroyed', countRevoked('client_credentials'));
  provider.on('grant.revoked', () => revocationCounter.inc({ kind: 'grant' }));
  provider.on('backchannel.success', () => backchannelCounter.inc({ outcome: 'success' }));
  provider.on('backchannel.error', () => backchannelCounter.inc({ outcome: 'error' }));
}
