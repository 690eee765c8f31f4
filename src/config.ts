import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { ConfigError } from './errors.js';

const booleanFromEnv = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const seconds = (defaultValue: number) =>
  z.coerce
    .number({ message: 'expected a number of seconds' })
    .int('expected a whole number of seconds')
    .positive('expected a positive number of seconds')
    .default(defaultValue);

/** "a, b,c" → ['a', 'b', 'c']: lists of keys in one variable. */
const commaList = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean),
);

const secretList = commaList.pipe(
  z.array(z.string().min(32, 'each key must be at least 32 characters')).min(1, 'expected at least one key'),
);

/**
 * KEY_ENCRYPTION_KEY: one or more comma-separated 32-byte keys in base64 or base64url. The
 * first encrypts; every one decrypts, so a new key can be put first while rows written
 * under the old one are re-encrypted.
 */
const keyEncryptionKeyMessage = 'each key must be 32 random bytes in base64 or base64url (e.g. `openssl rand -base64 32`)';
const keyEncryptionKeyList = commaList.pipe(
  z
    .array(
      z
        .string()
        .regex(/^[A-Za-z0-9+/_-]+={0,2}$/, keyEncryptionKeyMessage)
        // Node's base64 decoder also reads the base64url alphabet.
        .transform((key) => Buffer.from(key, 'base64'))
        .refine((bytes) => bytes.length === 32, keyEncryptionKeyMessage),
    )
    .min(1, 'expected at least one key'),
);

/** An http(s) URL shown to people (privacy policy). */
const publicUrl = z
  .url({ message: 'expected an absolute http(s) URL' })
  .refine((value) => /^https?:\/\//.test(value), 'expected an http:// or https:// URL');

/** Where people reach whoever answers privacy questions: an email address or an http(s) URL. */
const contactAddress = z
  .string()
  .trim()
  .refine(
    (value) => z.email().safeParse(value).success || (URL.canParse(value) && /^https?:\/\//.test(value)),
    'expected an email address or an http(s) URL',
  );

const smtpUrl = z
  .url({ message: 'expected an smtp:// or smtps:// URL' })
  .refine((value) => /^smtps?:\/\//.test(value), 'expected an smtp:// or smtps:// URL');

const postgresUrl = z
  .url({ message: 'expected a postgres:// URL' })
  .refine((value) => /^postgres(ql)?:\/\//.test(value), 'expected a postgres:// URL');

/**
 * Every setting the server and CLI read, with its default. `.env.example` documents each.
 * Unknown variables are ignored; bad values stop start-up with one line per problem.
 */
const environmentSchema = z.object({
  PORT: z.coerce.number({ message: 'expected a port number' }).int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  ISSUER: z
    .url({ message: 'expected an absolute http(s) URL' })
    .refine((value) => /^https?:\/\//.test(value), 'expected an http:// or https:// URL')
    // zod runs every refine even after z.url() failed, so guard before parsing.
    .refine((value) => !URL.canParse(value) || (!new URL(value).search && !new URL(value).hash), 'must not have a query or fragment')
    .optional(),
  DATABASE_URL: postgresUrl.optional(),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
  // Off behind a pooler that cannot carry them (PgBouncer in transaction mode before 1.21).
  DATABASE_PREPARED_STATEMENTS: booleanFromEnv.default(true),
  EMBEDDED_DATA_DIR: z.string().min(1).default('./data'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // auto: readable lines in a terminal, JSON lines otherwise (containers, files, log shippers).
  // OpenTelemetry: OTLP/HTTP traces to this collector (e.g. http://otel-collector:4318) when set.
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ message: 'expected an http(s) URL' }).optional(),
  OTEL_SERVICE_NAME: z.string().min(1).max(100).default('group-idp'),
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty'], { message: 'expected auto, json or pretty' }).default('auto'),
  TRUST_PROXY: booleanFromEnv.default(false),
  // How many proxies append to X-Forwarded-For in front of us: the client is the address the
  // nearest of them saw, never an entry further left (the client writes those).
  TRUSTED_PROXY_HOPS: z.coerce.number({ message: 'expected a number of proxies' }).int().min(1).max(10).default(1),
  METRICS_PORT: z.coerce.number({ message: 'expected a port number' }).int().min(0).max(65535).optional(),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  METRICS_TOKEN: z.string().min(32, 'must be at least 32 characters').optional(),
  ALLOW_DATABASE_HELD_KEYS: booleanFromEnv.default(false),
  COOKIE_KEYS: secretList.optional(),
  PAIRWISE_SALT: z.string().min(32, 'must be at least 32 characters').optional(),
  KEY_ENCRYPTION_KEY: keyEncryptionKeyList.optional(),
  // Zero is allowed: a single instance that restarts right after rotating needs no delay.
  KEY_ACTIVATION_DELAY_SECONDS: z.coerce
    .number({ message: 'expected a number of seconds' })
    .int('expected a whole number of seconds')
    .min(0, 'expected zero or more seconds')
    .default(3600),
  // How often every instance re-reads its signing and cookie keys (rotations apply without a restart).
  KEY_REFRESH_SECONDS: seconds(10),
  ACCESS_TOKEN_TTL: seconds(3600),
  ID_TOKEN_TTL: seconds(3600),
  REFRESH_TOKEN_TTL: seconds(14 * 24 * 3600),
  SESSION_TTL: seconds(14 * 24 * 3600),
  GRANT_TTL: seconds(365 * 24 * 3600),
  INTERACTION_TTL: seconds(3600),
  AUTHORIZATION_CODE_TTL: seconds(60),
  CLIENT_CREDENTIALS_TTL: seconds(600),
  DEVICE_CODE_TTL: seconds(600),
  // How often a device may poll the token endpoint (RFC 8628 §3.2); faster polls get slow_down.
  DEVICE_POLL_INTERVAL_SECONDS: seconds(5),
  ALLOW_PRIVATE_NETWORK_FETCH: booleanFromEnv.default(false),
  SWEEP_INTERVAL_SECONDS: seconds(60),
  // Worker processes sharing the port (node:cluster): a number, or auto for one per CPU.
  WEB_CONCURRENCY: z
    .union([z.literal('auto'), z.coerce.number({ message: 'expected a number of processes or auto' }).int().min(1).max(64)])
    .default(1),
  SWEEP_BATCH_SIZE: z.coerce.number().int().min(1).max(100000).default(5000),
  SHUTDOWN_TIMEOUT_SECONDS: seconds(10),
  LOGIN_MAX_FAILURES_PER_ACCOUNT: z.coerce.number().int().min(1).default(10),
  LOGIN_MAX_FAILURES_PER_IP: z.coerce.number().int().min(1).default(50),
  LOGIN_FAILURE_WINDOW_SECONDS: seconds(900),
  LOGIN_LOCK_SECONDS: seconds(900),
  SIGN_INS_PER_ACCOUNT_PER_MINUTE: z.coerce.number().int().min(1).default(10),
  SIGN_INS_PER_IP_PER_MINUTE: z.coerce.number().int().min(1).default(300),
  // Wrong second-step answers (authenticator-app or recovery codes, passkeys) per account in
  // LOGIN_FAILURE_WINDOW_SECONDS before the second step is locked for LOGIN_LOCK_SECONDS. A
  // right password does not reset it: only a right second step does.
  SECOND_STEP_FAILURES_PER_ACCOUNT: z.coerce.number().int().min(1).default(5),
  // argon2 runs on libuv's thread pool (UV_THREADPOOL_SIZE, 4 by default): more at once only queues there.
  PASSWORD_HASHING_CONCURRENCY: z.coerce.number().int().min(1).max(64).optional(),
  PASSWORD_HASHING_QUEUE_MAX: z.coerce.number().int().min(0).max(10000).default(100),
  PASSWORD_HASHING_QUEUE_TIMEOUT_MS: z.coerce.number().int().min(1).max(60000).default(5000),
  REGISTRATIONS_PER_IP_PER_HOUR: z.coerce.number().int().min(1).default(20),
  // Wrong device-flow user codes per IP in LOGIN_FAILURE_WINDOW_SECONDS before it is locked out.
  USER_CODE_FAILURES_PER_IP: z.coerce.number().int().min(1).default(10),
  TOKEN_FAILURES_PER_IP_PER_MINUTE: z.coerce.number().int().min(1).default(60),
  DYNAMIC_REGISTRATION: booleanFromEnv.default(false),
  LOGOUT_DELIVERY_POLL_SECONDS: seconds(1),
  LOGOUT_DELIVERY_MAX_AGE_SECONDS: seconds(3600),
  // Security events to services: how often the worker looks for due ones, and how long an
  // event is retried before it is recorded as failed.
  EVENT_DELIVERY_POLL_SECONDS: seconds(1),
  EVENT_DELIVERY_MAX_AGE_SECONDS: seconds(86400),
  AUDIT_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(365),
  // Self-service (registration mail, password reset, the /account pages).
  SMTP_URL: smtpUrl.optional(),
  MAIL_FROM: z.string().trim().min(3).max(320).optional(),
  // Queued mail (with SMTP_URL): polled every MAIL_DELIVERY_POLL_SECONDS, retried with backoff
  // while the server is down or answers 4xx, given up after MAIL_DELIVERY_MAX_AGE_SECONDS.
  MAIL_DELIVERY_POLL_SECONDS: seconds(1),
  MAIL_DELIVERY_MAX_AGE_SECONDS: seconds(86400),
  PRIVACY_POLICY_URL: publicUrl.optional(),
  PRIVACY_CONTACT: contactAddress.optional(),
  EMAIL_VERIFICATION_TTL: seconds(3 * 24 * 3600),
  PASSWORD_RESET_TTL: seconds(3600),
  ACCOUNT_SESSION_TTL: seconds(1800),
  MAIL_PER_ACCOUNT_PER_HOUR: z.coerce.number().int().min(1).default(5),
  MAIL_PER_RECIPIENT_PER_REQUESTER_PER_HOUR: z.coerce.number().int().min(1).default(3),
  MAIL_PER_RECIPIENT_PER_HOUR: z.coerce.number().int().min(1).default(10),
  // Notices of changes a person made to their own sign-in factors, per kind and address.
  MAIL_SECURITY_NOTICES_PER_HOUR: z.coerce.number().int().min(1).default(30),
  // The old address can undo an email change for at least a week (a takeover is noticed late).
  EMAIL_CHANGE_REVERT_TTL: z.coerce
    .number({ message: 'expected a number of seconds' })
    .int('expected a whole number of seconds')
    .min(7 * 24 * 3600, 'must be at least 7 days (604800 seconds)')
    .default(14 * 24 * 3600),
  PASSWORD_RESETS_PER_IP_PER_HOUR: z.coerce.number().int().min(1).default(20),
});

/** Every environment variable the server and the CLI read (deploy manifests are checked against it). */
export const environmentVariables = Object.keys(environmentSchema.shape);

export type Config = Readonly<{
  port: number;
  host: string;
  issuer: string;
  databaseUrl: string | undefined;
  databasePoolMax: number;
  /** Parameterised statements as named prepared statements (DATABASE_URL only; never for the embedded database). */
  databasePreparedStatements: boolean;
  embeddedDataDir: string;
  logLevel: z.infer<typeof environmentSchema>['LOG_LEVEL'];
  logFormat: z.infer<typeof environmentSchema>['LOG_FORMAT'];
  telemetry: Readonly<{ endpoint: string | undefined; serviceName: string }>;
  trustProxy: boolean;
  /** Proxies appending to X-Forwarded-For in front of us (used when trustProxy). */
  trustedProxyHops: number;
  /** Where Prometheus metrics are served: a listener of their own, and/or /metrics with a bearer token. */
  metrics: Readonly<{ port: number | undefined; host: string; token: string | undefined }>;
  /** With an https issuer, cookie and key-encryption keys kept in the database are refused unless this is set. */
  allowDatabaseHeldKeys: boolean;
  cookieKeys: readonly string[] | undefined;
  pairwiseSalt: string | undefined;
  /** Key-encryption keys for signing keys at rest; the first encrypts. Undefined: one is kept in the database. */
  keyEncryptionKeys: readonly Buffer[] | undefined;
  /** How long a rotated-in signing or cookie key is published before it signs. */
  keyActivationDelaySeconds: number;
  /** How often a running instance re-reads its keys. */
  keyRefreshSeconds: number;
  ttl: Readonly<{
    accessToken: number;
    idToken: number;
    refreshToken: number;
    session: number;
    grant: number;
    interaction: number;
    authorizationCode: number;
    clientCredentials: number;
    deviceCode: number;
  }>;
  allowPrivateNetworkFetch: boolean;
  sweepIntervalSeconds: number;
  /** Worker processes to run (1: this process serves alone). */
  webConcurrency: number;
  sweepBatchSize: number;
  shutdownTimeoutSeconds: number;
  rateLimits: RateLimits;
  /** The bounded queue every argon2 computation waits in. */
  passwordHashing: Readonly<{ concurrency: number; queueMax: number; queueTimeoutMs: number }>;
  /** Mail: over SMTP when smtpUrl is set, otherwise to the log and the outbox table. */
  mail: Readonly<{ smtpUrl: string | undefined; from: string; pollSeconds: number; maxAgeSeconds: number }>;
  /** Shown in every page footer when set. */
  privacy: Readonly<{ policyUrl: string | undefined; contact: string | undefined }>;
  /** Lifetimes (seconds) of one-time links and of the /account pages' idle session. */
  selfService: Readonly<{
    emailVerificationTtl: number;
    passwordResetTtl: number;
    accountSessionTtl: number;
    emailChangeRevertTtl: number;
  }>;
  auditRetentionDays: number;
  logoutDelivery: Readonly<{ pollSeconds: number; maxAgeSeconds: number }>;
  eventDelivery: Readonly<{ pollSeconds: number; maxAgeSeconds: number }>;
  dynamicRegistration: boolean;
  devicePollIntervalSeconds: number;
}>;

export type RateLimits = Readonly<{
  loginFailuresPerAccount: number;
  loginFailuresPerIp: number;
  loginFailureWindowSeconds: number;
  loginLockSeconds: number;
  /** Sign-in attempts, whatever their outcome. */
  signInsPerAccountPerMinute: number;
  signInsPerIpPerMinute: number;
  /** Wrong second-step answers per account in the failure window. */
  secondStepFailuresPerAccount: number;
  registrationsPerIpPerHour: number;
  userCodeFailuresPerIp: number;
  tokenFailuresPerIpPerMinute: number;
  /** Verification and email-change requests one signed-in account may make per hour. */
  mailPerAccountPerHour: number;
  /** Messages of one kind one requester (an account, an IP) may cause to one address per hour. */
  mailPerRecipientPerRequesterPerHour: number;
  /** Messages others may cause to one address per hour, whoever they are (the owner's own actions are not capped). */
  mailPerRecipientPerHour: number;
  /** Notices of a person's own changes to their sign-in factors, per kind and address per hour. */
  mailSecurityNoticesPerHour: number;
  passwordResetsPerIpPerHour: number;
}>;

/**
 * Production keeps cookie keys and the key-encryption key outside the database: with them in
 * it, a dump is enough to forge sessions and decrypt signing keys.
 */
function keysFromEnvironment(e: z.output<typeof environmentSchema>, issuer: string): void {
  if (!issuer.startsWith('https://') || e.ALLOW_DATABASE_HELD_KEYS) return;
  const missing = [!e.COOKIE_KEYS && 'COOKIE_KEYS', !e.KEY_ENCRYPTION_KEY && 'KEY_ENCRYPTION_KEY'].filter(Boolean);
  if (missing.length) {
    throw new ConfigError(
      `invalid configuration: ${missing.join(' and ')} must come from the environment with an https ISSUER (a database dump would otherwise hold them); set ALLOW_DATABASE_HELD_KEYS=true only to run without them knowingly`,
    );
  }
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || 'environment'}: ${issue.message}`).join('; ');
}

/** Parses the environment once; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = environmentSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(`invalid configuration: ${describeIssues(parsed.error)}`);
  }
  const e = parsed.data;
  const issuer = (e.ISSUER ?? `http://localhost:${e.PORT}`).replace(/\/$/, '');
  keysFromEnvironment(e, issuer);
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    issuer,
    databaseUrl: e.DATABASE_URL,
    databasePoolMax: e.DATABASE_POOL_MAX,
    databasePreparedStatements: e.DATABASE_PREPARED_STATEMENTS,
    embeddedDataDir: e.EMBEDDED_DATA_DIR,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    telemetry: Object.freeze({ endpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: e.OTEL_SERVICE_NAME }),
    trustProxy: e.TRUST_PROXY,
    trustedProxyHops: e.TRUSTED_PROXY_HOPS,
    metrics: Object.freeze({ port: e.METRICS_PORT, host: e.METRICS_HOST, token: e.METRICS_TOKEN }),
    allowDatabaseHeldKeys: e.ALLOW_DATABASE_HELD_KEYS,
    cookieKeys: e.COOKIE_KEYS,
    pairwiseSalt: e.PAIRWISE_SALT,
    keyEncryptionKeys: e.KEY_ENCRYPTION_KEY ? Object.freeze(e.KEY_ENCRYPTION_KEY) : undefined,
    keyActivationDelaySeconds: e.KEY_ACTIVATION_DELAY_SECONDS,
    keyRefreshSeconds: e.KEY_REFRESH_SECONDS,
    ttl: Object.freeze({
      accessToken: e.ACCESS_TOKEN_TTL,
      idToken: e.ID_TOKEN_TTL,
      refreshToken: e.REFRESH_TOKEN_TTL,
      session: e.SESSION_TTL,
      grant: e.GRANT_TTL,
      interaction: e.INTERACTION_TTL,
      authorizationCode: e.AUTHORIZATION_CODE_TTL,
      clientCredentials: e.CLIENT_CREDENTIALS_TTL,
      deviceCode: e.DEVICE_CODE_TTL,
    }),
    allowPrivateNetworkFetch: e.ALLOW_PRIVATE_NETWORK_FETCH,
    sweepIntervalSeconds: e.SWEEP_INTERVAL_SECONDS,
    webConcurrency: e.WEB_CONCURRENCY === 'auto' ? availableParallelism() : e.WEB_CONCURRENCY,
    sweepBatchSize: e.SWEEP_BATCH_SIZE,
    shutdownTimeoutSeconds: e.SHUTDOWN_TIMEOUT_SECONDS,
    rateLimits: Object.freeze({
      loginFailuresPerAccount: e.LOGIN_MAX_FAILURES_PER_ACCOUNT,
      loginFailuresPerIp: e.LOGIN_MAX_FAILURES_PER_IP,
      loginFailureWindowSeconds: e.LOGIN_FAILURE_WINDOW_SECONDS,
      loginLockSeconds: e.LOGIN_LOCK_SECONDS,
      signInsPerAccountPerMinute: e.SIGN_INS_PER_ACCOUNT_PER_MINUTE,
      signInsPerIpPerMinute: e.SIGN_INS_PER_IP_PER_MINUTE,
      secondStepFailuresPerAccount: e.SECOND_STEP_FAILURES_PER_ACCOUNT,
      registrationsPerIpPerHour: e.REGISTRATIONS_PER_IP_PER_HOUR,
      userCodeFailuresPerIp: e.USER_CODE_FAILURES_PER_IP,
      tokenFailuresPerIpPerMinute: e.TOKEN_FAILURES_PER_IP_PER_MINUTE,
      mailPerAccountPerHour: e.MAIL_PER_ACCOUNT_PER_HOUR,
      mailPerRecipientPerRequesterPerHour: e.MAIL_PER_RECIPIENT_PER_REQUESTER_PER_HOUR,
      mailPerRecipientPerHour: e.MAIL_PER_RECIPIENT_PER_HOUR,
      mailSecurityNoticesPerHour: e.MAIL_SECURITY_NOTICES_PER_HOUR,
      passwordResetsPerIpPerHour: e.PASSWORD_RESETS_PER_IP_PER_HOUR,
    }),
    passwordHashing: Object.freeze({
      concurrency: e.PASSWORD_HASHING_CONCURRENCY ?? defaultThreadPoolSize(),
      queueMax: e.PASSWORD_HASHING_QUEUE_MAX,
      queueTimeoutMs: e.PASSWORD_HASHING_QUEUE_TIMEOUT_MS,
    }),
    auditRetentionDays: e.AUDIT_RETENTION_DAYS,
    mail: Object.freeze({
      smtpUrl: e.SMTP_URL,
      from: e.MAIL_FROM ?? `Group ID <no-reply@${new URL(issuer).hostname}>`,
      pollSeconds: e.MAIL_DELIVERY_POLL_SECONDS,
      maxAgeSeconds: e.MAIL_DELIVERY_MAX_AGE_SECONDS,
    }),
    privacy: Object.freeze({ policyUrl: e.PRIVACY_POLICY_URL, contact: e.PRIVACY_CONTACT }),
    selfService: Object.freeze({
      emailVerificationTtl: e.EMAIL_VERIFICATION_TTL,
      passwordResetTtl: e.PASSWORD_RESET_TTL,
      accountSessionTtl: e.ACCOUNT_SESSION_TTL,
      emailChangeRevertTtl: e.EMAIL_CHANGE_REVERT_TTL,
    }),
    dynamicRegistration: e.DYNAMIC_REGISTRATION,
    devicePollIntervalSeconds: e.DEVICE_POLL_INTERVAL_SECONDS,
    logoutDelivery: Object.freeze({ pollSeconds: e.LOGOUT_DELIVERY_POLL_SECONDS, maxAgeSeconds: e.LOGOUT_DELIVERY_MAX_AGE_SECONDS }),
    eventDelivery: Object.freeze({ pollSeconds: e.EVENT_DELIVERY_POLL_SECONDS, maxAgeSeconds: e.EVENT_DELIVERY_MAX_AGE_SECONDS }),
  });
}

/** libuv's thread pool, where argon2 runs: UV_THREADPOOL_SIZE, else libuv's default of 4. */
function defaultThreadPoolSize(): number {
  const size = Number.parseInt(process.env['UV_THREADPOOL_SIZE'] ?? '', 10);
  return Number.isInteger(size) && size > 0 ? Math.min(size, 64) : 4;
}

export function isSecureIssuer(config: Config): boolean {
  return config.issuer.startsWith('https://');
}
