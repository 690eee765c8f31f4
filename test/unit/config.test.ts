import { describe, expect, it } from 'vitest';
import { isSecureIssuer, loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

const validKey = 'k'.repeat(32);

/** The error loadConfig throws for `env`; fails the test when it does not throw. */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig defaults', () => {
  it('uses port 3000, issuer http://localhost:3000, host 0.0.0.0, the embedded database and info logging when nothing is set', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      host: '0.0.0.0',
      issuer: 'http://localhost:3000',
      databaseUrl: undefined,
      databasePoolMax: 10,
      databasePreparedStatements: true,
      embeddedDataDir: './data',
      logLevel: 'info',
      trustProxy: false,
      cookieKeys: undefined,
      pairwiseSalt: undefined,
      allowPrivateNetworkFetch: false,
      sweepIntervalSeconds: 60,
      sweepBatchSize: 5000,
      shutdownTimeoutSeconds: 10,
    });
    expect(config.ttl).toEqual({
      accessToken: 3600,
      idToken: 3600,
      refreshToken: 14 * 24 * 3600,
      session: 14 * 24 * 3600,
      grant: 365 * 24 * 3600,
      interaction: 3600,
      authorizationCode: 60,
      clientCredentials: 600,
      deviceCode: 600,
    });
    expect(isSecureIssuer(config)).toBe(false);
  });

  it('turns prepared statements off with DATABASE_PREPARED_STATEMENTS=false', () => {
    expect(loadConfig({ DATABASE_PREPARED_STATEMENTS: 'false' })).toMatchObject({ databasePreparedStatements: false });
  });

  it('derives the default issuer from PORT', () => {
    expect(loadConfig({ PORT: '8080' })).toMatchObject({ port: 8080, issuer: 'http://localhost:8080' });
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '', LOG_LEVEL: '', DATABASE_URL: '' })).toMatchObject({
      port: 3000,
      logLevel: 'info',
      databaseUrl: undefined,
    });
  });

  it('ignores variables it does not know', () => {
    expect(() => loadConfig({ HOME: '/root', SOMETHING_ELSE: 'x' })).not.toThrow();
  });
});

/** What an https issuer needs from the environment (see the keys tests below). */
const productionKeys = { COOKIE_KEYS: validKey, KEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64') };

describe('loadConfig parsing', () => {
  it('strips a trailing slash from ISSUER and keeps its path', () => {
    expect(loadConfig({ ...productionKeys, ISSUER: 'https://id.example.com/' }).issuer).toBe('https://id.example.com');
    expect(loadConfig({ ...productionKeys, ISSUER: 'https://example.com/idp/' }).issuer).toBe('https://example.com/idp');
    expect(isSecureIssuer(loadConfig({ ...productionKeys, ISSUER: 'https://id.example.com' }))).toBe(true);
  });

  it('refuses an https issuer whose cookie or key-encryption keys would be kept in the database, unless told to', () => {
    for (const env of [{}, { COOKIE_KEYS: validKey }, { KEY_ENCRYPTION_KEY: productionKeys.KEY_ENCRYPTION_KEY }]) {
      expect(() => loadConfig({ ...env, ISSUER: 'https://id.example.com' })).toThrow(/must come from the environment with an https ISSUER/);
    }
    expect(loadConfig({ ISSUER: 'https://id.example.com', ALLOW_DATABASE_HELD_KEYS: 'true' }).allowDatabaseHeldKeys).toBe(true);
    // Development on http needs neither.
    expect(() => loadConfig({ ISSUER: 'http://localhost:3000' })).not.toThrow();
  });

  it('reads the trusted proxy hops (default 1) and the metrics settings (no listener, loopback, no token by default)', () => {
    expect(loadConfig({}).trustedProxyHops).toBe(1);
    expect(loadConfig({}).metrics).toEqual({ port: undefined, host: '127.0.0.1', token: undefined });
    expect(loadConfig({ TRUST_PROXY: 'true', TRUSTED_PROXY_HOPS: '2' }).trustedProxyHops).toBe(2);
    expect(() => loadConfig({ TRUSTED_PROXY_HOPS: '0' })).toThrow(/TRUSTED_PROXY_HOPS/);
    expect(() => loadConfig({ METRICS_TOKEN: 'short' })).toThrow(/METRICS_TOKEN/);
    expect(() => loadConfig({ EMAIL_CHANGE_REVERT_TTL: '3600' })).toThrow(/at least 7 days/);
  });

  it('reads DATABASE_URL, LOG_LEVEL, COOKIE_KEYS (comma-separated, trimmed) and TTLs', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://idp:secret@db.internal:5432/idp',
      LOG_LEVEL: 'debug',
      COOKIE_KEYS: ` ${validKey} , ${'z'.repeat(40)} ,`,
      ACCESS_TOKEN_TTL: '900',
    });
    expect(config.databaseUrl).toBe('postgres://idp:secret@db.internal:5432/idp');
    expect(config.logLevel).toBe('debug');
    expect(config.cookieKeys).toEqual([validKey, 'z'.repeat(40)]);
    expect(config.ttl.accessToken).toBe(900);
    expect(loadConfig({ DATABASE_URL: 'postgresql://localhost/idp' }).databaseUrl).toBe('postgresql://localhost/idp');
  });

  it.each([
    ['true', true],
    ['1', true],
    ['yes', true],
    ['false', false],
    ['0', false],
    ['no', false],
  ])('parses the boolean %s as %s', (value, expected) => {
    const config = loadConfig({ TRUST_PROXY: value, ALLOW_PRIVATE_NETWORK_FETCH: value });
    expect(config.trustProxy).toBe(expected);
    expect(config.allowPrivateNetworkFetch).toBe(expected);
  });

  it('returns a frozen object whose ttl is frozen too', () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.ttl)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.ttl as { accessToken: number }).accessToken = 1;
    }).toThrow(TypeError);
    expect(config.port).toBe(3000);
  });
});

describe('loadConfig rejects bad values with a ConfigError naming the variable', () => {
  it.each(['abc', '70000', '-1', '80.5'])('PORT=%s', (value) => {
    expect(configError({ PORT: value }).message).toMatch(/\bPORT\b/);
  });

  it.each(['not a url', 'mysql://db.internal/idp', 'http://db.internal/idp'])('DATABASE_URL=%s', (value) => {
    expect(configError({ DATABASE_URL: value }).message).toMatch(/\bDATABASE_URL\b/);
  });

  it.each(['verbose', 'INFO'])('LOG_LEVEL=%s', (value) => {
    expect(configError({ LOG_LEVEL: value }).message).toMatch(/\bLOG_LEVEL\b/);
  });

  it.each(['short', `${validKey},too-short`, ' , '])('COOKIE_KEYS=%j (a key under 32 characters, or none)', (value) => {
    expect(configError({ COOKIE_KEYS: value }).message).toMatch(/\bCOOKIE_KEYS\b/);
  });

  it.each(['maybe', 'on'])('TRUST_PROXY=%s', (value) => {
    expect(configError({ TRUST_PROXY: value }).message).toMatch(/\bTRUST_PROXY\b/);
  });

  it.each(['ftp://id.example.com', 'localhost:3000', 'https://id.example.com/?tenant=a', 'https://id.example.com/#x'])(
    'ISSUER=%s',
    (value) => {
      expect(configError({ ISSUER: value }).message).toMatch(/\bISSUER\b/);
    },
  );

  it.each(['id.example.com', 'not a url', '/relative'])('ISSUER=%s (not parseable as a URL at all)', (value) => {
    expect(configError({ ISSUER: value }).message).toMatch(/\bISSUER\b/);
  });

  it.each(['0', '-5', '1.5', 'soon'])('ACCESS_TOKEN_TTL=%s (not a positive whole number of seconds)', (value) => {
    expect(configError({ ACCESS_TOKEN_TTL: value }).message).toMatch(/\bACCESS_TOKEN_TTL\b/);
  });

  it('names every bad variable when several are wrong', () => {
    const { message } = configError({ PORT: 'x', LOG_LEVEL: 'loud', DATABASE_URL: 'nope' });
    expect(message).toMatch(/\bPORT\b/);
    expect(message).toMatch(/\bLOG_LEVEL\b/);
    expect(message).toMatch(/\bDATABASE_URL\b/);
  });

  it('does not echo a bad DATABASE_URL password back in the message', () => {
    const { message } = configError({ DATABASE_URL: 'mysql://user:hunter2@db/idp' });
    expect(message).toMatch(/\bDATABASE_URL\b/);
    expect(message).not.toContain('hunter2');
  });
});
