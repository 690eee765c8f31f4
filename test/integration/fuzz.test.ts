import fc from 'fast-check';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount, createTestClient } from '../helpers/fixtures.js';
import { discoverClient, startAuthorization, exchangeCode } from '../helpers/oidc-client.js';
import { rawRequest, type RawRequest, type RawResponse } from '../helpers/raw-http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { completeAuthorization, formActions, hiddenField, UserAgent } from '../helpers/user-agent.js';
import { signInToAccountPages } from '../helpers/self-service.js';
import { SoftwareAuthenticator } from '../helpers/software-authenticator.js';
import {
  addPasskeyOnSecurityPage,
  passkeyOptionsIn,
  recoveryCodesIn,
  setUpAuthenticatorApp,
  submit,
  totpCode,
  unescapeHtml,
} from '../helpers/strong-sign-in.js';

/*
 * Property-based fuzz of every endpoint and form. Requests are written byte for byte on a
 * socket (test/helpers/raw-http.ts) so they can carry what fetch refuses: NUL bytes, raw
 * Unicode, duplicated headers, oversized headers. The invariants: never a 5xx, never a stack
 * trace or an internal path in a body.
 *
 * Reproduce a failure with the seed it prints: FUZZ_SEED=<seed> npx vitest run test/integration/fuzz.test.ts
 * More runs per endpoint: FUZZ_RUNS=500. Every request and its answer: FUZZ_VERBOSE=1.
 */

const seed = process.env['FUZZ_SEED'] ? Number(process.env['FUZZ_SEED']) : Math.floor(Math.random() * 2 ** 31);
const numRuns = Number(process.env['FUZZ_RUNS'] ?? 50);

let server: TestServer;
let port: number;

/** Everything real the fuzz mixes into its inputs so requests get past the first checks. */
interface Fixtures {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  postLogoutRedirectUri: string;
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
  idToken: string;
  /** Cookies of a browser with a signed-in session (for /auth, /session/end). */
  sessionCookies: string;
  logoutXsrf: string;
  /** Interactions waiting at the login and at the consent prompt, with their browser's cookies and CSRF token. */
  interactions: { uid: string; cookies: string; csrf: string; prompt: 'login' | 'consent' }[];
  /** Sign-ins past their password: at the second step (a service's and the account pages'), and at the offer to set a factor up. */
  steps: { path: string; cookies: string; csrf: string }[];
  /** Real answers to mix in: a current authenticator code, recovery codes, passkey answers of the right shape. */
  answers: string[];
  /** A signed-in account page (with a passkey and an authenticator app) and what its forms name. */
  accountPage: { cookies: string; csrf: string; passkey: string; registration: string };
  /** An access token a service got by client_credentials (for the SSF API), and its stream's id. */
  serviceToken: string;
  streamId: string;
}
let fx: Fixtures;

// ---------------------------------------------------------------------------------------
// Findings: counts per endpoint and status class, printed at the end.

const counts = new Map<string, Map<string, number>>();
function count(endpoint: string, statusClass: string): void {
  const row = counts.get(endpoint) ?? new Map<string, number>();
  row.set(statusClass, (row.get(statusClass) ?? 0) + 1);
  counts.set(endpoint, row);
}

const stackTracePatterns: [string, RegExp][] = [
  ['stack frame', /\bat [^\n]{0,200}\([^()\n]{1,300}:\d+:\d+\)/],
  ['anonymous stack frame', /\bat (?:async )?(?:file:\/\/|node:|\/)[^\s]*:\d+:\d+/],
  ['Error: followed by a path', /Error:[^\n]{0,300}?(?:file:\/\/|\/[\w.@-]+\/[\w.@/-]+\.(?:[cm]?js|ts))/],
  ['node_modules path', /node_modules\//],
  ['JSON stack property', /"stack"\s*:/],
  ['JavaScript error name', /\b(?:TypeError|ReferenceError|RangeError|AggregateError)\b|Cannot read propert/],
];

function describeRequest(request: RawRequest): string {
  const target = Buffer.from(request.target).toString('latin1');
  const headers = request.headers.map(([name, value]) => `${name}: ${Buffer.from(value).toString('latin1').slice(0, 80)}`).join(' | ');
  const body = request.body ? `${request.body.length} bytes: ${request.body.subarray(0, 200).toString('latin1')}` : 'none';
  return `${request.method} ${target.slice(0, 300)}\nheaders: ${headers}\nbody: ${body}`;
}

async function send(endpoint: string, request: RawRequest): Promise<RawResponse> {
  let response: RawResponse;
  try {
    response = await rawRequest(port, request);
  } catch (error) {
    count(endpoint, 'no response');
    throw new Error(`no response to\n${describeRequest(request)}\n${(error as Error).message}`);
  }
  if (process.env['FUZZ_VERBOSE']) {
    const message = /class="(?:error|lead)"[^>]*>([^<]*)|"error_description":"([^"]*)"/.exec(response.body);
    console.info(
      `${endpoint} → ${response.status} ${message?.[1] ?? message?.[2] ?? ''}\n  ${describeRequest(request).slice(0, 400).replaceAll('\n', '\n  ')}`,
    );
  }
  count(endpoint, `${Math.floor(response.status / 100)}xx`);
  count(endpoint, String(response.status));
  const context = `\n${describeRequest(request)}\n→ ${response.status}: ${response.body.slice(0, 500)}`;
  expect(response.status, `5xx${context}`).toBeLessThan(500);
  for (const [what, pattern] of stackTracePatterns) expect(response.body, `${what} in body${context}`).not.toMatch(pattern);
  expect(response.body, `working directory in body${context}`).not.toContain(process.cwd());
  return response;
}

// ---------------------------------------------------------------------------------------
// Generators.

const specialStrings = [
  '',
  ' ',
  '\u0000',
  'a\u0000b@example.test',
  '%00',
  '%',
  '%ZZ',
  '%E0%A4%A',
  '\uD83D', // lone high surrogate
  '\uDC00x', // lone low surrogate
  '\u202Eevil\u202C@example.test', // RTL override
  'مرحبا بالعالم',
  'שלום@דוגמה.ישראל',
  '😀👩‍👩‍👧‍👦',
  '𝕳𝖊𝖑𝖑𝖔@𝖊𝖝𝖆𝖒𝖕𝖑𝖊.test',
  'e\u0301\u0301\u0301',
  '\uFEFFbom',
  '\r\nSet-Cookie: x=y',
  '\t',
  '../../../etc/passwd',
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>',
  "' OR '1'='1",
  '${7*7}{{7*7}}<%= it %>',
  'null',
  'undefined',
  'true',
  '[]',
  '{}',
  '{"$gt":""}',
  '__proto__',
  'constructor',
  'NaN',
  '-1',
  '1e309',
  '9'.repeat(400),
  'openid',
  'openid profile email offline_access',
  'code',
  'S256',
  'plain',
  'none',
  'login',
  'consent',
  'javascript:alert(1)',
  'data:text/html,x',
  'http://127.0.0.1:1/cb',
  'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
  'eyJhbGciOiJIUzI1NiJ9.e30.AAAA',
];

/** Up to ~100 KB of one repeated character (multi-byte ones included). */
const oversized = fc
  .tuple(fc.constantFrom('a', 'é', '😀', '\u0000', '%', '&', '=', '\u202E', ' '), fc.integer({ min: 2_000, max: 100_000 }))
  .map(([char, bytes]) => char.repeat(Math.ceil(bytes / Buffer.byteLength(char))));

const text: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...specialStrings) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) }, // astral planes, controls, NUL
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.emailAddress() },
  { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 })).map(([a, b]) => `${a}\u0000${b}`) },
  { weight: 1, arbitrary: oversized },
);

type Pair = [string, string];

/** UTF-8 percent-encoding; `verbatim` leaves printable ASCII (%, &, =, +) alone, as a sloppy client would. */
function encode(value: string, mode: 'strict' | 'verbatim'): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const char = String.fromCharCode(byte);
    const keep = /[A-Za-z0-9\-._~]/.test(char) || (mode === 'verbatim' && byte > 0x20 && byte < 0x7f && char !== '#');
    out += keep ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function encodePairs(pairs: Pair[], mode: 'strict' | 'verbatim'): string {
  return pairs.map(([name, value]) => `${encode(name, mode)}=${encode(value, mode)}`).join('&');
}

interface ParamSpec {
  /** A well-formed request; the fuzz drops, replaces, duplicates and adds to it. */
  base: Pair[];
  /** Further parameter names the endpoint knows. */
  names?: string[];
  /** Real values (tokens, ids) to mix in. */
  good?: string[];
}

function params(spec: ParamSpec): fc.Arbitrary<Pair[]> {
  const names = [...new Set([...spec.base.map(([name]) => name), ...(spec.names ?? [])])];
  const good = spec.good ?? [];
  const value = good.length ? fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...good) }, { weight: 3, arbitrary: text }) : text;
  const name = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...names) },
    { weight: 1, arbitrary: fc.constantFrom(...names).map((n) => `${n}[]`) },
    { weight: 1, arbitrary: fc.constantFrom(...names).map((n) => `${n}[0][x]`) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('__proto__', '__proto__[admin]', 'constructor[prototype][admin]', 'toString', 'hasOwnProperty', ''),
    },
    { weight: 1, arbitrary: text },
  );
  // One field fuzzed, the rest of the well-formed request intact: reaches the deepest code.
  const single =
    spec.base.length === 0
      ? fc.constant<Pair[]>([])
      : fc
          // index === base.length: nothing fuzzed, the well-formed request itself.
          .tuple(fc.nat({ max: spec.base.length }), text)
          .map(([index, fuzzed]) => spec.base.map(([n, v], i): Pair => [n, i === index ? fuzzed : v]));
  // Fields dropped, replaced, duplicated, turned into arrays, plus unknown ones.
  const chaos = fc
    .record({
      keep: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: spec.base.length, maxLength: spec.base.length }),
      replace: fc.array(fc.option(value, { freq: 2 }), { minLength: spec.base.length, maxLength: spec.base.length }),
      extra: fc.array(fc.tuple(name, value), { maxLength: 4 }),
      duplicate: fc.option(fc.tuple(fc.nat(), value), { freq: 3 }),
      arrayify: fc.option(fc.nat(), { freq: 4 }),
      shuffle: fc.boolean(),
    })
    .map(({ keep, replace, extra, duplicate, arrayify, shuffle }) => {
      let pairs: Pair[] = spec.base.flatMap(([n, v], i): Pair[] => (keep[i] === 0 ? [] : [[n, replace[i] ?? v]]));
      pairs.push(...extra);
      if (duplicate && pairs.length) pairs.push([pairs[duplicate[0] % pairs.length]![0], duplicate[1]]);
      if (arrayify !== null && pairs.length) {
        const i = arrayify % pairs.length;
        pairs[i] = [`${pairs[i]![0]}[]`, pairs[i]![1]];
      }
      if (shuffle) pairs = [...pairs].reverse();
      return pairs;
    });
  return fc.oneof({ weight: 2, arbitrary: single }, { weight: 1, arbitrary: chaos });
}

const bodyKinds = [
  'form',
  'form-raw',
  'form-charset',
  'json',
  'json-nested',
  'json-broken',
  'text',
  'multipart',
  'no-content-type',
  'json-as-form',
  'gzip-claimed',
  'random-type',
] as const;
type BodyKind = (typeof bodyKinds)[number];

const MAX_BODY = 110_000;

function encodeBody(kind: BodyKind, pairs: Pair[], variant: number): { headers: [string, string][]; body: Buffer } {
  const asObject = () => {
    const object: Record<string, unknown> = {};
    for (const [name, value] of pairs) {
      const previous = object[name];
      object[name] = previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value];
    }
    return object;
  };
  const form = 'application/x-www-form-urlencoded';
  let headers: [string, string][];
  let body: string | Buffer;
  switch (kind) {
    case 'form':
      [headers, body] = [[['Content-Type', form]], encodePairs(pairs, 'strict')];
      break;
    case 'form-raw':
      // Unencoded UTF-8 bytes, NULs and stray % straight in the body.
      [headers, body] = [[['Content-Type', form]], Buffer.from(pairs.map(([n, v]) => `${n}=${v}`).join('&'), 'utf8')];
      break;
    case 'form-charset': {
      const charset = ['utf-16', 'latin1', 'bogus-charset', 'utf-7', '', '"utf-8"', 'utf-8; charset=utf-16'][variant % 7];
      [headers, body] = [[['Content-Type', `${form}; charset=${charset}`]], encodePairs(pairs, 'strict')];
      break;
    }
    case 'json':
      [headers, body] = [[['Content-Type', 'application/json']], JSON.stringify(asObject())];
      break;
    case 'json-nested': {
      const nested = Object.fromEntries(
        Object.entries(asObject()).map(([name, value], i) => [name, [{ $gt: '' }, [value], 42, null, true, { value }][(i + variant) % 6]]),
      );
      [headers, body] = [[['Content-Type', 'application/json']], JSON.stringify(nested)];
      break;
    }
    case 'json-broken':
      [headers, body] = [[['Content-Type', 'application/json; charset=utf-8']], JSON.stringify(asObject()).slice(0, -1 - (variant % 3))];
      break;
    case 'text':
      [headers, body] = [[['Content-Type', 'text/plain']], pairs.map(([n, v]) => `${n}=${v}`).join('\n')];
      break;
    case 'multipart': {
      const boundary = `----fuzz${variant}`;
      const parts = pairs.map(([n, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${n}"\r\n\r\n${v}\r\n`).join('');
      [headers, body] = [[['Content-Type', `multipart/form-data; boundary=${boundary}`]], `${parts}--${boundary}--\r\n`];
      break;
    }
    case 'no-content-type':
      [headers, body] = [[], encodePairs(pairs, 'strict')];
      break;
    case 'json-as-form':
      [headers, body] = [[['Content-Type', form]], JSON.stringify(asObject())];
      break;
    case 'gzip-claimed':
      [headers, body] = [
        [
          ['Content-Type', form],
          ['Content-Encoding', ['gzip', 'deflate', 'br', 'identity, gzip', 'bogus'][variant % 5]!],
        ],
        encodePairs(pairs, 'strict'),
      ];
      break;
    case 'random-type':
      [headers, body] = [
        [['Content-Type', ['application/xml', 'application/x-www-form-urlencodedx', '*/*', ';;;', 'text/html'][variant % 5]!]],
        encodePairs(pairs, 'strict'),
      ];
      break;
  }
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return { headers, body: bytes.subarray(0, MAX_BODY) };
}

/** Header values: Unicode sent as raw UTF-8 bytes, NULs, and values from a few bytes to past Node's 16 KB header limit. */
const headerValue: fc.Arbitrary<string | Buffer> = fc.oneof(
  { weight: 10, arbitrary: text.map((value) => Buffer.from(value.slice(0, 2_000), 'utf8')) },
  // Long, but under Node's 16 KB limit for all headers together: reaches the app.
  { weight: 2, arbitrary: fc.integer({ min: 1_000, max: 12_000 }).map((n) => 'x'.repeat(n)) },
  // Past it: Node answers 431 itself.
  { weight: 1, arbitrary: fc.integer({ min: 16_000, max: 70_000 }).map((n) => 'y'.repeat(n)) },
);

function headersArb(extra: { cookies?: string[]; authorization?: string[] } = {}): fc.Arbitrary<[string, string | Buffer][]> {
  const accept = fc.constantFrom('text/html', 'application/json', '*/*', 'text/html;q=0, application/json;q=0', 'image/png', ';;');
  const cookie = fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom(...(extra.cookies ?? ['_session=x'])) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(...(extra.cookies ?? ['_session=x'])), text)
        .map(([valid, garbage]) => Buffer.from(`${valid}; _session=${garbage.slice(0, 500)}; _interaction.sig=AAAA`, 'utf8')),
    },
    { weight: 1, arbitrary: headerValue },
  );
  const authorization = fc.oneof(
    ...(extra.authorization?.length ? [fc.constantFrom(...extra.authorization)] : []),
    text.map((value) => Buffer.from(`Bearer ${value.slice(0, 5_000)}`, 'utf8')),
    fc
      .tuple(text, text)
      .map(([user, pass]) => `Basic ${Buffer.from(`${user.slice(0, 500)}:${pass.slice(0, 500)}`, 'utf8').toString('base64')}`),
    fc.constantFrom('Basic', 'Basic !!!', 'Basic Og==', 'Basic OmE=', 'Bearer', 'DPoP x', 'Negotiate abc', 'Bearer a b c'),
  );
  const named: fc.Arbitrary<[string, string | Buffer]> = fc.oneof(
    { weight: 3, arbitrary: fc.tuple(fc.constant('Accept'), accept) },
    { weight: 2, arbitrary: fc.tuple(fc.constant('Cookie'), cookie) },
    { weight: 2, arbitrary: fc.tuple(fc.constant('Authorization'), authorization) },
    {
      weight: 3,
      arbitrary: fc.tuple(
        fc.constantFrom(
          'Accept-Language',
          'User-Agent',
          'Referer',
          'Origin',
          'X-Request-Id',
          'X-Forwarded-For',
          'X-Forwarded-Proto',
          'X-Forwarded-Host',
          'Host',
          'If-None-Match',
          'Range',
          'Accept-Encoding',
          'DPoP',
          'X-Long',
        ),
        headerValue,
      ),
    },
  );
  return fc.oneof(fc.constant<[string, string | Buffer][]>([]), fc.array(named, { minLength: 1, maxLength: 5 }));
}

const otherMethods = ['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND', 'FOO'];

interface EndpointSpec {
  methods: string[];
  /** Paths to request: the real one, and generated ones (e.g. a fuzzed interaction uid). */
  path: fc.Arbitrary<string>;
  query?: ParamSpec;
  body?: ParamSpec;
  cookies?: string[];
  authorization?: string[];
}

function requests(spec: EndpointSpec): fc.Arbitrary<RawRequest> {
  return fc
    .record({
      method: fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom(...spec.methods) },
        { weight: 1, arbitrary: fc.constantFrom(...otherMethods) },
      ),
      path: spec.path,
      // raw: unencoded bytes in the request line, which Node itself mostly refuses with a bare 400.
      queryMode: fc.constantFrom<'strict' | 'verbatim' | 'raw'>('strict', 'strict', 'strict', 'strict', 'strict', 'verbatim', 'raw'),
      query: spec.query
        ? params(spec.query)
        : fc.oneof(
            { weight: 3, arbitrary: fc.constant<Pair[]>([]) },
            { weight: 1, arbitrary: fc.array(fc.tuple(text, text), { maxLength: 3 }) },
          ),
      body: spec.body ? params(spec.body) : fc.constant<Pair[]>([]),
      bodyKind: fc.oneof({ weight: 6, arbitrary: fc.constant<BodyKind>('form') }, { weight: 6, arbitrary: fc.constantFrom(...bodyKinds) }),
      variant: fc.nat(),
      cookies: spec.cookies?.length ? fc.option(fc.constantFrom(...spec.cookies), { freq: 8 }) : fc.constant(null),
      authorization: spec.authorization?.length ? fc.option(fc.constantFrom(...spec.authorization), { freq: 3 }) : fc.constant(null),
      headers: headersArb({ cookies: spec.cookies, authorization: spec.authorization }),
    })
    .map(({ method, path, queryMode, query, body, bodyKind, variant, cookies, authorization, headers }): RawRequest => {
      const queryString =
        queryMode === 'raw'
          ? Buffer.from(query.map(([n, v]) => `${n}=${v}`).join('&'), 'utf8') // raw bytes in the request line
          : Buffer.from(encodePairs(query, queryMode), 'latin1');
      const target = query.length ? Buffer.concat([Buffer.from(`${path}?`, 'latin1'), queryString]) : Buffer.from(path, 'latin1');
      const all: [string, string | Buffer][] = [];
      if (cookies) all.push(['Cookie', cookies]);
      if (authorization) all.push(['Authorization', authorization]);
      all.push(...headers);
      if (spec.body && method !== 'GET' && method !== 'HEAD') {
        const encoded = encodeBody(bodyKind, body, variant);
        return { method, target, headers: [...all, ...encoded.headers], body: encoded.body };
      }
      return { method, target, headers: all };
    });
}

/** The real path, or the same route with a fuzzed segment. */
function pathWith(real: string[], build: (segment: string) => string): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...real) },
    { weight: 1, arbitrary: text.map((segment) => build(encode(segment.slice(0, 3_000), 'strict'))) },
    { weight: 1, arbitrary: text.map((segment) => build(encode(segment.slice(0, 3_000), 'verbatim').replaceAll('?', '%3F'))) },
  );
}

async function fuzz(endpoint: string, spec: EndpointSpec | (() => EndpointSpec | fc.Arbitrary<RawRequest>), runs = numRuns): Promise<void> {
  const built = typeof spec === 'function' ? spec() : spec;
  const arbitrary = built instanceof fc.Arbitrary ? built : requests(built);
  // Each endpoint draws its own stream from the run's seed, so endpoints do not fail in lockstep.
  const endpointSeed = [...endpoint].reduce((hash, char) => (hash * 31 + char.charCodeAt(0)) | 0, seed);
  try {
    await fc.assert(
      fc.asyncProperty(arbitrary, async (request) => {
        await send(endpoint, request);
      }),
      { seed: endpointSeed, numRuns: runs, interruptAfterTimeLimit: 25_000 },
    );
  } catch (error) {
    (error as Error).message =
      `${endpoint}: replay with FUZZ_SEED=${seed} npx vitest run test/integration/fuzz.test.ts\n${(error as Error).message}`;
    throw error;
  }
}

// ---------------------------------------------------------------------------------------

beforeAll(async () => {
  console.info(`fuzz seed ${seed}, ${numRuns} runs per endpoint (replay: FUZZ_SEED=${seed} npx vitest run test/integration/fuzz.test.ts)`);
  // Sign-in failures per email are counted; a fuzz that repeats a short email would otherwise
  // wait out the progressive delay (up to 4 s each). Locking at 3 failures keeps it at zero
  // and fuzzes the locked page too. The per-IP limits stay as high as startTestServer sets them.
  // localhost: passkeys are offered (WebAuthn refuses IP addresses), so their routes do real work.
  // The second step is not locked after a few wrong codes, so the fuzz keeps reaching past it.
  server = await startTestServer({
    hostName: 'localhost',
    env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', SECOND_STEP_FAILURES_PER_ACCOUNT: '100000' },
  });
  port = (server.server.address() as { port: number }).port;

  const redirectUri = 'http://127.0.0.1:9600/cb';
  const postLogoutRedirectUri = 'http://127.0.0.1:9600/signed-out';
  const { client, clientSecret } = await createTestClient(server.db, server.validator, {
    name: `Fuzz target ${Date.now()}`,
    redirectUris: [redirectUri],
    postLogoutRedirectUris: [postLogoutRedirectUri],
  });
  const [account, consenting] = await Promise.all([createTestAccount(server.db), createTestAccount(server.db)]);

  // A signed-in browser with tokens: gives real cookies, tokens and an id_token to mix in.
  const config = await discoverClient(server.issuer, client.clientId, clientSecret);
  const authorization = await startAuthorization(config, redirectUri, 'openid email profile offline_access');
  const sessionAgent = new UserAgent();
  const { callback } = await completeAuthorization(sessionAgent, authorization.url.href, redirectUri, {
    email: account.email,
    password: account.password,
    consent: 'allow',
  });
  const tokens = await exchangeCode(config, callback, authorization);
  const sessionCookies = await sessionAgent.jar.getCookieString(`${server.issuer}/session/end`);
  const logoutPage = await sessionAgent.request(`${server.issuer}/session/end?client_id=${encodeURIComponent(client.clientId)}`);
  const logoutXsrf = hiddenField(logoutPage.body, 'xsrf');

  const authorizeUrl = (await startAuthorization(config, redirectUri, 'openid email')).url.href;
  // An interaction at the login prompt.
  const loginAgent = new UserAgent();
  const loginPage = await loginAgent.follow(authorizeUrl, redirectUri);
  if ('stoppedAt' in loginPage) throw new Error('expected the login page');
  const loginUid = formActions(loginPage.body)
    .find((a) => a.endsWith('/login'))!
    .split('/')[2]!;
  // An interaction at the consent prompt: signed in, not yet consented.
  const consentAgent = new UserAgent();
  const consentLogin = await consentAgent.follow(authorizeUrl, redirectUri);
  if ('stoppedAt' in consentLogin) throw new Error('expected the login page');
  const consentLoginAction = formActions(consentLogin.body).find((a) => a.endsWith('/login'))!;
  const consentPage = await consentAgent.follow(server.issuer + consentLoginAction, redirectUri, {
    form: { _csrf: hiddenField(consentLogin.body, '_csrf'), email: consenting.email, password: consenting.password },
  });
  if ('stoppedAt' in consentPage) throw new Error('expected the consent page');
  const consentUid = formActions(consentPage.body)
    .find((a) => a.endsWith('/consent'))!
    .split('/')[2]!;

  // An account with a passkey and an authenticator app (set up on the Security page), and the
  // sign-ins it leaves between their steps.
  const strong = await createTestAccount(server.db);
  const accountAgent = new UserAgent();
  await signInToAccountPages(accountAgent, server.issuer, strong.email, strong.password);
  const authenticator = new SoftwareAuthenticator(server.issuer);
  const securityBefore = await accountAgent.request(`${server.issuer}/account/security`);
  const registration = JSON.stringify(authenticator.register(passkeyOptionsIn(securityBefore.body, 'register')));
  await addPasskeyOnSecurityPage(accountAgent, server, authenticator);
  const { secret, after } = await setUpAuthenticatorApp(accountAgent, server);
  void after;
  const securityPage = await accountAgent.request(`${server.issuer}/account/security`);
  const recoveryCodes = recoveryCodesIn((await submit(accountAgent, server, securityPage, '/account/security/recovery-codes')).body);
  const securityNow = await accountAgent.request(`${server.issuer}/account/security`);
  const stepAt = async (agent: UserAgent, page: { body: string; url: string }) => ({
    path: new URL(page.url).pathname,
    cookies: await agent.jar.getCookieString(page.url),
    csrf: hiddenField(page.body, '_csrf'),
  });
  const serviceStep = new UserAgent();
  const atLogin = await serviceStep.follow(authorizeUrl, redirectUri);
  if ('stoppedAt' in atLogin) throw new Error('expected the login page');
  const secondStepPage = await serviceStep.follow(
    server.issuer + formActions(atLogin.body).find((a) => a.endsWith('/login'))!,
    redirectUri,
    {
      form: { _csrf: hiddenField(atLogin.body, '_csrf'), email: strong.email, password: strong.password },
    },
  );
  if ('stoppedAt' in secondStepPage) throw new Error('expected the second step');
  const accountStep = new UserAgent();
  const accountSignIn = await accountStep.request(`${server.issuer}/account/sign-in`);
  const accountSecondStep = await accountStep.follow(`${server.issuer}/account/sign-in`, 'http://never/', {
    form: { _csrf: hiddenField(accountSignIn.body, '_csrf'), email: strong.email, password: strong.password, next: '/account' },
  });
  if ('stoppedAt' in accountSecondStep) throw new Error('expected the account second step');
  const demanding = await createTestClient(server.db, server.validator, {
    redirectUris: [redirectUri],
    requireAcr: 'urn:group-idp:acr:2fa',
  });
  const demandingConfig = await discoverClient(server.issuer, demanding.client.clientId, demanding.clientSecret);
  const setupStep = new UserAgent();
  const setupLogin = await setupStep.follow((await startAuthorization(demandingConfig, redirectUri, 'openid')).url.href, redirectUri);
  if ('stoppedAt' in setupLogin) throw new Error('expected the login page');
  const setupPage = await setupStep.follow(server.issuer + formActions(setupLogin.body).find((a) => a.endsWith('/login'))!, redirectUri, {
    form: { _csrf: hiddenField(setupLogin.body, '_csrf'), email: consenting.email, password: consenting.password },
  });
  if ('stoppedAt' in setupPage) throw new Error('expected the setup offer');
  const assertion = JSON.stringify(authenticator.authenticate(passkeyOptionsIn(secondStepPage.body, 'authenticate')));

  // A service with an event stream, managing it through the SSF API.
  const subscriber = await createTestClient(server.db, server.validator, {
    redirectUris: [redirectUri],
    grantTypes: ['client_credentials'],
  });
  const subscriberConfig = await discoverClient(server.issuer, subscriber.client.clientId, subscriber.clientSecret);
  const serviceToken = (await oidc.clientCredentialsGrant(subscriberConfig)).access_token;
  const stream = await fetch(`${server.issuer}/ssf/streams`, {
    method: 'POST',
    headers: { authorization: `Bearer ${serviceToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: 'http://127.0.0.1:9/events' }, events_requested: [] }),
  });
  const streamId = ((await stream.json()) as { stream_id: string }).stream_id;

  fx = {
    steps: [await stepAt(serviceStep, secondStepPage), await stepAt(accountStep, accountSecondStep), await stepAt(setupStep, setupPage)],
    answers: [totpCode(secret, 1), recoveryCodes[0]!, recoveryCodes[1]!.toLowerCase(), assertion, registration],
    accountPage: {
      cookies: await accountAgent.jar.getCookieString(`${server.issuer}/account/security`),
      csrf: hiddenField(securityNow.body, '_csrf'),
      passkey: unescapeHtml(/name="passkey" value="([^"]+)"/.exec(securityNow.body)![1]!),
      registration,
    },
    serviceToken,
    streamId,
    clientId: client.clientId,
    clientSecret: clientSecret!,
    redirectUri,
    postLogoutRedirectUri,
    email: account.email,
    password: account.password,
    accessToken: tokens.access_token,
    refreshToken: tokens.refresh_token!,
    idToken: tokens.id_token!,
    sessionCookies,
    logoutXsrf,
    interactions: [
      {
        uid: loginUid,
        prompt: 'login',
        csrf: hiddenField(loginPage.body, '_csrf'),
        cookies: await loginAgent.jar.getCookieString(`${server.issuer}/interaction/${loginUid}/login`),
      },
      {
        uid: consentUid,
        prompt: 'consent',
        csrf: hiddenField(consentPage.body, '_csrf'),
        cookies: await consentAgent.jar.getCookieString(`${server.issuer}/interaction/${consentUid}/consent`),
      },
    ],
  };
}, 60_000);

afterAll(async () => {
  const classes = ['2xx', '3xx', '4xx', '5xx', 'no response'];
  const lines = [...counts].map(([endpoint, row]) => {
    const statuses = [...row]
      .filter(([key]) => /^\d{3}$/.test(key))
      .sort(([x], [y]) => x.localeCompare(y))
      .map(([status, n]) => `${status}×${n}`)
      .join(' ');
    return `${endpoint.padEnd(30)} ${classes.map((c) => `${c}=${row.get(c) ?? 0}`).join(' ')}  (${statuses})`;
  });
  console.info(`fuzz responses by endpoint and status class (seed ${seed}):\n${lines.join('\n')}`);
  await server?.close();
});

// ---------------------------------------------------------------------------------------

const basicAuth = () => [
  `Basic ${Buffer.from(`${encodeURIComponent(fx.clientId)}:${encodeURIComponent(fx.clientSecret)}`).toString('base64')}`,
  `Basic ${Buffer.from(`${encodeURIComponent(fx.clientId)}:wrong`).toString('base64')}`,
];

/**
 * A hosted form of one real interaction, posted with that browser's cookies and CSRF token,
 * which the fuzz then breaks: another interaction's token or cookies, none, fuzzed ones, a
 * fuzzed uid.
 */
function interactionForm(
  action: 'login' | 'register' | 'consent' | 'abort',
  fields: Pair[],
  good: () => string[] = () => [],
): () => fc.Arbitrary<RawRequest> {
  // Mostly the interaction at the prompt this form belongs to; sometimes the other one.
  const prompt = action === 'login' || action === 'register' ? 'login' : 'consent';
  return () =>
    fc
      .oneof(
        { weight: 4, arbitrary: fc.constantFrom(...fx.interactions.filter((i) => i.prompt === prompt)) },
        { weight: 1, arbitrary: fc.constantFrom(...fx.interactions.filter((i) => i.prompt !== prompt)) },
      )
      .chain((interaction) =>
        requests({
          methods: ['POST'],
          path: pathWith([`/interaction/${interaction.uid}/${action}`], (uid) => `/interaction/${uid}/${action}`),
          body: {
            base: [['_csrf', interaction.csrf], ...fields],
            names: ['_csrf'],
            good: [...fx.interactions.map(({ csrf }) => csrf), ...good()],
          },
          // Mostly this browser's own cookies; sometimes the other interaction's.
          cookies: [...Array<string>(6).fill(interaction.cookies), ...fx.interactions.map(({ cookies }) => cookies)],
        }),
      );
}

describe('fuzzing every endpoint never yields a 5xx or a stack trace', () => {
  it('control: the well-formed form posts the fuzz starts from are accepted (so the fuzz reaches past the checks)', async () => {
    const post = async (uid: string, action: string, cookies: string, form: Record<string, string>) =>
      (
        await rawRequest(port, {
          method: 'POST',
          target: `/interaction/${uid}/${action}`,
          headers: [
            ['Cookie', cookies],
            ['Accept', 'text/html'],
            ['Content-Type', 'application/x-www-form-urlencoded'],
          ],
          body: Buffer.from(new URLSearchParams(form).toString()),
        })
      ).status;
    const [login, consent] = fx.interactions;
    expect(await post(login!.uid, 'login', login!.cookies, { _csrf: login!.csrf, email: fx.email, password: fx.password })).toBe(303);
    expect(await post(login!.uid, 'login', login!.cookies, { _csrf: login!.csrf, email: fx.email, password: 'wrong password' })).toBe(401);
    expect(await post(consent!.uid, 'consent', consent!.cookies, { _csrf: consent!.csrf })).toBe(303);
    expect(await post(consent!.uid, 'abort', consent!.cookies, { _csrf: consent!.csrf })).toBe(303);
    expect(await post(login!.uid, 'login', login!.cookies, { _csrf: consent!.csrf, email: fx.email, password: fx.password })).toBe(400);
  });

  it('discovery (/.well-known/openid-configuration)', async () => {
    await fuzz('GET discovery', { methods: ['GET'], path: fc.constant('/.well-known/openid-configuration') });
  });

  it('/jwks', async () => {
    await fuzz('GET /jwks', { methods: ['GET'], path: fc.constant('/jwks') });
  });

  it('/auth (GET), including /auth/:uid resumption', async () => {
    await fuzz('GET /auth', () => ({
      methods: ['GET'],
      path: pathWith(['/auth'], (uid) => `/auth/${uid}`),
      query: {
        base: [
          ['client_id', fx.clientId],
          ['redirect_uri', fx.redirectUri],
          ['response_type', 'code'],
          ['scope', 'openid email'],
          ['state', 'st'],
          ['nonce', 'n'],
          ['code_challenge', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'],
          ['code_challenge_method', 'S256'],
        ],
        names: [
          'prompt',
          'max_age',
          'login_hint',
          'id_token_hint',
          'response_mode',
          'ui_locales',
          'claims',
          'acr_values',
          'request',
          'request_uri',
          'resource',
          'registration',
          'dpop_jkt',
          'display',
        ],
        good: [
          fx.clientId,
          fx.redirectUri,
          fx.idToken,
          'none',
          'login',
          'consent',
          'form_post',
          'query',
          'fragment',
          'jwt',
          '{"userinfo":{"email":null}}',
        ],
      },
      cookies: [fx.sessionCookies],
    }));
  });

  it('/auth (POST): the same parameters in a form body', async () => {
    await fuzz('POST /auth', () => ({
      methods: ['POST'],
      path: fc.constant('/auth'),
      body: {
        base: [
          ['client_id', fx.clientId],
          ['redirect_uri', fx.redirectUri],
          ['response_type', 'code'],
          ['scope', 'openid email'],
          ['state', 'st'],
          ['code_challenge', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'],
          ['code_challenge_method', 'S256'],
        ],
        names: ['prompt', 'max_age', 'login_hint', 'nonce', 'ui_locales', 'request_uri', 'dpop_jkt'],
        good: [fx.clientId, fx.redirectUri, 'none', 'login', 'consent'],
      },
      cookies: [fx.sessionCookies],
    }));
  });

  it('/token', async () => {
    await fuzz('POST /token', () => ({
      methods: ['POST'],
      path: fc.constant('/token'),
      body: {
        base: [
          ['grant_type', 'authorization_code'],
          ['code', 'not-a-real-code'],
          ['redirect_uri', fx.redirectUri],
          ['code_verifier', 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'],
        ],
        names: ['refresh_token', 'client_id', 'client_secret', 'scope', 'resource', 'client_assertion', 'client_assertion_type'],
        good: [fx.clientId, fx.clientSecret, fx.refreshToken, 'refresh_token', 'client_credentials', 'authorization_code', 'openid'],
      },
      authorization: basicAuth(),
    }));
  });

  // Before revocation, which may revoke the access token it uses.
  it('/me (userinfo, GET and POST)', async () => {
    await fuzz('GET|POST /me', () => ({
      methods: ['GET', 'POST'],
      path: fc.constant('/me'),
      query: { base: [], names: ['access_token', 'claims'], good: [fx.accessToken] },
      body: { base: [['access_token', fx.accessToken]], names: ['claims'], good: [fx.accessToken] },
      authorization: [`Bearer ${fx.accessToken}`, `DPoP ${fx.accessToken}`, `bearer ${fx.accessToken}`],
    }));
  });

  for (const endpoint of ['/token/introspection', '/token/revocation']) {
    it(endpoint, async () => {
      await fuzz(`POST ${endpoint}`, () => ({
        methods: ['POST'],
        path: fc.constant(endpoint),
        body: {
          base: [
            ['token', fx.accessToken],
            ['token_type_hint', 'access_token'],
          ],
          names: ['client_id', 'client_secret'],
          good: [fx.accessToken, fx.refreshToken, fx.idToken, 'refresh_token', fx.clientId, fx.clientSecret],
        },
        authorization: basicAuth(),
      }));
    });
  }

  it('/session/end (GET and POST)', async () => {
    await fuzz('GET|POST /session/end', () => {
      const logout: ParamSpec = {
        base: [
          ['id_token_hint', fx.idToken],
          ['post_logout_redirect_uri', fx.postLogoutRedirectUri],
          ['state', 's'],
        ],
        names: ['client_id', 'logout_hint', 'ui_locales'],
        good: [fx.idToken, fx.clientId, fx.postLogoutRedirectUri, fx.email],
      };
      return { methods: ['GET', 'POST'], path: fc.constant('/session/end'), query: logout, body: logout, cookies: [fx.sessionCookies] };
    });
  });

  it('/session/end/confirm', async () => {
    await fuzz('POST /session/end/confirm', () => ({
      methods: ['POST'],
      path: fc.constant('/session/end/confirm'),
      body: {
        base: [
          ['xsrf', fx.logoutXsrf],
          ['logout', 'yes'],
        ],
        good: [fx.logoutXsrf, 'yes'],
      },
      cookies: [fx.sessionCookies],
    }));
  });

  it('/interaction/:uid (GET) and /interaction/:uid/register (GET)', async () => {
    await fuzz('GET /interaction/:uid', () =>
      fc.constantFrom(...fx.interactions).chain((interaction) =>
        requests({
          methods: ['GET'],
          path: pathWith([`/interaction/${interaction.uid}`, `/interaction/${interaction.uid}/register`], (uid) => `/interaction/${uid}`),
          cookies: [interaction.cookies, interaction.cookies, interaction.cookies, ...fx.interactions.map(({ cookies }) => cookies)],
        }),
      ),
    );
  });

  it('/interaction/:uid/login', async () => {
    await fuzz(
      'POST /interaction/:uid/login',
      interactionForm(
        'login',
        [
          ['email', 'nobody@example.test'],
          ['password', 'a wrong password'],
        ],
        () => [fx.email, fx.password],
      ),
    );
  });

  it('/interaction/:uid/register', async () => {
    await fuzz(
      'POST /interaction/:uid/register',
      interactionForm('register', [
        ['email', 'fuzz-register@example.test'],
        ['password', 'a long enough password'],
        ['name', 'Fuzz Person'],
      ]),
    );
  });

  it('/interaction/:uid/consent, with the optional items ticked (scope)', async () => {
    await fuzz(
      'POST /interaction/:uid/consent',
      interactionForm('consent', [['scope', 'email']], () => ['email', 'profile', 'openid']),
    );
  });

  it('/interaction/:uid/abort', async () => {
    await fuzz('POST /interaction/:uid/abort', interactionForm('abort', []));
  });

  it("the sign-in steps: passkey sign-in, the second step, the offer to set a factor up (a service's and the account pages')", async () => {
    const stepPaths = (step: { path: string }) => {
      const base = step.path.replace(/\/(second-step|setup)$/, '');
      return ['passkey', 'second-step', 'setup', 'setup/authenticator', 'setup/passkey', 'setup/done', 'setup/decline'].map(
        (action) => `${base}/${action}`,
      );
    };
    await fuzz('GET|POST sign-in steps', () =>
      fc.constantFrom(...fx.steps).chain((step) =>
        requests({
          methods: ['GET', 'POST'],
          path: pathWith(stepPaths(step), (segment) => `/interaction/${segment}/second-step`),
          query: { base: [], names: ['next'], good: ['/account/security'] },
          body: {
            base: [
              ['_csrf', step.csrf],
              ['code', '123456'],
            ],
            names: ['recovery_code', 'credential', 'name', '_csrf'],
            good: [...fx.steps.map(({ csrf }) => csrf), ...fx.answers],
          },
          cookies: [step.cookies, step.cookies, step.cookies, ...fx.steps.map(({ cookies }) => cookies), fx.accountPage.cookies],
        }),
      ),
    );
  });

  it('the Security page and its forms (/account/security/...)', async () => {
    const { accountPage } = fx;
    await fuzz('GET|POST /account/security', () => ({
      methods: ['GET', 'POST'],
      path: fc.constantFrom(
        '/account/security',
        '/account/security/passkeys',
        '/account/security/passkeys/rename',
        '/account/security/passkeys/remove',
        '/account/security/authenticator',
        '/account/security/authenticator/remove',
        '/account/security/recovery-codes',
        '/account/security/sessions/end',
        '/account/security/sessions/end-others',
      ),
      body: {
        base: [
          ['_csrf', accountPage.csrf],
          ['passkey', accountPage.passkey],
          ['name', 'Renamed'],
        ],
        names: ['credential', 'password', 'code', 'session', 'account_session'],
        good: [accountPage.csrf, accountPage.passkey, accountPage.registration, fx.password, ...fx.answers],
      },
      cookies: [accountPage.cookies, accountPage.cookies, fx.sessionCookies],
    }));
  });

  it('the connected-services page and its forms: disconnect, withdraw an item', async () => {
    const { accountPage } = fx;
    await fuzz('GET|POST /account/services', () => ({
      methods: ['GET', 'POST'],
      path: fc.constantFrom('/account/services', '/account/services/revoke', '/account/services/withdraw'),
      body: {
        base: [
          ['_csrf', accountPage.csrf],
          ['clientId', fx.clientId],
          ['scope', 'email'],
        ],
        good: [accountPage.csrf, fx.clientId, 'email', 'profile', 'openid'],
      },
      cookies: [accountPage.cookies, accountPage.cookies, fx.sessionCookies],
    }));
  });

  it('the SSF transmitter: metadata, stream management, status and verification (/ssf/...)', async () => {
    const push = 'urn:ietf:rfc:8935';
    const eventUri = 'https://schemas.openid.net/secevent/risc/event-type/account-purged';
    const json: fc.Arbitrary<unknown> = fc.oneof(
      { weight: 3, arbitrary: text },
      { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
      { weight: 1, arbitrary: fc.constantFrom(push, eventUri, fx.streamId, 'enabled', 'paused', 'disabled', 'https://receiver.example/e') },
    );
    const body = fc.record(
      {
        stream_id: fc.oneof(fc.constant(fx.streamId), json),
        delivery: fc.oneof(
          fc.record({ method: fc.oneof(fc.constant(push), json), endpoint_url: fc.oneof(fc.constant('https://receiver.example/e'), json) }),
          json,
        ),
        events_requested: fc.oneof(fc.array(fc.oneof(fc.constant(eventUri), json), { maxLength: 25 }), json),
        description: json,
        status: json,
        reason: json,
        state: json,
      },
      { requiredKeys: [] },
    );
    const auth = [`Bearer ${fx.serviceToken}`, `Bearer ${fx.accessToken}`, 'Bearer nope', 'Basic Og=='];
    await fuzz('ANY /ssf', () =>
      fc
        .record({
          method: fc.constantFrom('GET', 'POST', 'PATCH', 'PUT', 'DELETE', 'HEAD', 'OPTIONS'),
          path: fc.constantFrom('/.well-known/ssf-configuration', '/ssf/streams', '/ssf/status', '/ssf/verify'),
          query: fc.option(fc.oneof(fc.constant(fx.streamId), text), { freq: 2 }),
          // Mostly the service's own token, so requests reach past the authentication.
          authorization: fc.option(fc.constantFrom(auth[0]!, auth[0]!, auth[0]!, auth[0]!, ...auth), { freq: 8 }),
          body: fc.oneof(
            body.map((value) => JSON.stringify(value)),
            text,
          ),
          type: fc.constantFrom('application/json', 'application/json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded'),
          headers: fc.oneof(
            { weight: 3, arbitrary: fc.constant<[string, string | Buffer][]>([]) },
            { weight: 1, arbitrary: headersArb({ authorization: auth }) },
          ),
        })
        .map(({ method, path, query, authorization, body: payload, type, headers }): RawRequest => {
          const target = query === null ? path : `${path}?stream_id=${encode(query, 'strict')}`;
          const all: [string, string | Buffer][] = [
            ...(authorization ? [['Authorization', authorization] as [string, string]] : []),
            ...headers,
          ];
          if (method === 'GET' || method === 'HEAD' || method === 'DELETE') return { method, target, headers: all };
          return { method, target, headers: [...all, ['Content-Type', type]], body: Buffer.from(payload, 'utf8').subarray(0, MAX_BODY) };
        }),
    );
    // The stream the fuzz started from may be gone (a DELETE can be drawn), but it never became another service's.
    const { rows } = await server.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM event_streams WHERE stream_id = $1 AND client_id <> (
      SELECT client_id FROM event_streams WHERE stream_id = $1)`,
      [fx.streamId],
    );
    expect(rows[0]!.n).toBe(0);
  });

  it('/healthz, /readyz, /metrics and the stylesheet', async () => {
    await fuzz('GET /healthz|/readyz|/metrics', {
      methods: ['GET'],
      path: fc.constantFrom('/healthz', '/readyz', '/metrics', '/static/style.css'),
    });
  });

  it('/device (GET and POST) and /device/auth: device sign-in', async () => {
    await fuzz('GET|POST /device', () => ({
      methods: ['GET', 'POST'],
      path: pathWith(['/device'], (uid) => `/device/${uid}`),
      query: { base: [], names: ['user_code'], good: ['BCDF-GHJK', 'bcdfghjk'] },
      body: {
        base: [
          ['xsrf', 'x'],
          ['user_code', 'BCDF-GHJK'],
        ],
        names: ['confirm', 'abort'],
        good: ['yes', 'BCDFGHJK'],
      },
      cookies: [fx.sessionCookies],
    }));
    await fuzz('POST /device/auth', () => ({
      methods: ['POST'],
      path: fc.constant('/device/auth'),
      body: {
        base: [
          ['client_id', fx.clientId],
          ['scope', 'openid'],
        ],
        names: ['client_secret', 'resource'],
        good: [fx.clientId, fx.clientSecret],
      },
      authorization: [`Basic ${Buffer.from(`${fx.clientId}:${fx.clientSecret}`).toString('base64')}`],
    }));
  });

  it('/request (pushed authorization requests)', async () => {
    await fuzz('POST /request', () => ({
      methods: ['POST'],
      path: fc.constant('/request'),
      body: {
        base: [
          ['redirect_uri', fx.redirectUri],
          ['response_type', 'code'],
          ['scope', 'openid'],
          ['code_challenge', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'],
          ['code_challenge_method', 'S256'],
        ],
        names: ['state', 'nonce', 'request_uri', 'request', 'dpop_jkt'],
        good: [fx.redirectUri, 'code'],
      },
      authorization: [`Basic ${Buffer.from(`${fx.clientId}:${fx.clientSecret}`).toString('base64')}`],
    }));
  });

  it('case and trailing-slash variants of every route are 404, never answered as the route', async () => {
    // Every route the app has (its routers' and the provider's), with parameters filled in.
    const routes = server.routePaths.map((template) => template.replace(/:[A-Za-z]+/g, 'x'));
    const templates = server.routePaths
      .filter((template) => template.includes(':'))
      .map((template) => new RegExp(`^${template.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z]+/g, '[^/]+')}$`));
    expect(routes).toEqual(
      expect.arrayContaining(['/account/password', '/interaction/x/login', '/token', '/.well-known/openid-configuration']),
    );
    const flipCase = (path: string, flips: boolean[]) =>
      [...path]
        .map((char, i) => (flips[i % flips.length] ? (char === char.toLowerCase() ? char.toUpperCase() : char.toLowerCase()) : char))
        .join('');
    const variant = fc
      .record({
        route: fc.constantFrom(...routes),
        flips: fc.array(fc.boolean(), { minLength: 1, maxLength: 12 }),
        slash: fc.boolean(),
        method: fc.constantFrom('GET', 'POST'),
      })
      .map(({ route, flips, slash, method }) => ({ route, path: `${flipCase(route, flips)}${slash ? '/' : ''}`, method }))
      // Not a variant when another route's parameter takes it: /device/Auth is /device/:uid.
      .filter(({ route, path }) => path !== route && path !== '/' && !templates.some((template) => template.test(path)));
    const answer = async (method: string, path: string) => {
      const response = await send('route variants', { method, target: path, headers: [['Accept', 'text/html']] });
      expect(response.status, `${method} ${path}`).toBe(404);
    };
    // Each route's trailing-slash and upper-case spelling, then random case flips.
    for (const route of routes) {
      for (const path of [`${route}/`, route.toUpperCase()]) for (const method of ['GET', 'POST']) await answer(method, path);
    }
    await fc.assert(
      fc.asyncProperty(variant, ({ path, method }) => answer(method, path)),
      { seed, numRuns: numRuns * 4 },
    );
  });

  it('unknown paths', async () => {
    await fuzz('GET unknown path', { methods: ['GET', 'POST'], path: pathWith(['/nope'], (segment) => `/${segment}`) });
  });
});

/** A 5xx the fuzz once found, kept as a regression test: the answer must be a 4xx (or a redirect). */
function fixedBug(name: string, statusOf: () => Promise<number>): void {
  it(name, async () => {
    expect(await statusOf()).toBeLessThan(500);
  });
}

const authorizeParams = (extra: Record<string, string> = {}) =>
  new URLSearchParams({
    client_id: fx.clientId,
    redirect_uri: fx.redirectUri,
    response_type: 'code',
    scope: 'openid',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    ...extra,
  });

describe('5xx answers the fuzz found, since fixed (regression tests)', () => {
  fixedBug('answers GET /auth/:uid for an unknown uid with a registered client_id and no redirect_uri with a 4xx, not a 500', async () => {
    const response = await fetch(`${server.issuer}/auth/unknown-uid?client_id=${encodeURIComponent(fx.clientId)}`, { redirect: 'manual' });
    return response.status;
  });

  fixedBug('answers a hosted-form POST whose Content-Encoding: gzip body is not gzip with a 4xx, not a 500', async () => {
    const { uid, cookies } = fx.interactions[0]!;
    const response = await rawRequest(port, {
      method: 'POST',
      target: `/interaction/${uid}/login`,
      headers: [
        ['Cookie', cookies],
        ['Content-Type', 'application/x-www-form-urlencoded'],
        ['Content-Encoding', 'gzip'],
      ],
      body: Buffer.from('email=a%40example.test&password=x'),
    });
    return response.status;
  });

  for (const target of ['/.well-known/openid-configuration', '/session/end']) {
    fixedBug(`answers GET ${target} with a Host header that is no valid authority ("a b") with a 4xx, not a 500`, async () => {
      return (await rawRequest(port, { method: 'GET', target, headers: [['Host', 'a b']] })).status;
    });
  }

  fixedBug('answers a valid authorization request whose state contains a NUL with a 4xx, not a 500', async () => {
    return (await fetch(`${server.issuer}/auth?${authorizeParams({ state: 'a\u0000b' })}`, { redirect: 'manual' })).status;
  });

  fixedBug('answers /session/end?state=%00 with a 4xx, not a 500', async () => {
    return (await fetch(`${server.issuer}/session/end?state=%00`, { redirect: 'manual' })).status;
  });

  for (const method of ['GET', 'HEAD']) {
    fixedBug(
      `answers ${method} /device/auth (routed as a device resumption) under a session that is not stored with a 4xx, not a 500`,
      async () => {
        const { cookies } = fx.interactions[0]!;
        // An interaction's cookies: signed by us, but naming no stored session.
        return (await rawRequest(port, { method, target: '/device/auth', headers: [['Cookie', `${cookies}; _session=unknown`]] })).status;
      },
    );
  }

  fixedBug('answers TRACE, a method no route implements, with a 4xx, not 501', async () => {
    return (await rawRequest(port, { method: 'TRACE', target: '/healthz', headers: [] })).status;
  });
});

describe('bugs the fuzz found, since fixed (regression tests)', () => {
  it('re-renders registration with a message (400) when the name contains a NUL, instead of a 500', async () => {
    const agent = new UserAgent();
    const login = await agent.follow(`${server.issuer}/auth?${authorizeParams()}`, fx.redirectUri);
    if ('stoppedAt' in login) throw new Error('expected the login page');
    const loginAction = formActions(login.body).find((a) => a.endsWith('/login'));
    if (!loginAction) throw new Error('no login form');
    const registerUrl = server.issuer + loginAction.replace(/login$/, 'register');
    const form = await agent.request(registerUrl);
    const response = await agent.request(registerUrl, {
      form: {
        _csrf: hiddenField(form.body, '_csrf'),
        email: `nul-${Date.now()}@example.test`,
        password: 'a long enough password',
        name: 'a\u0000b',
      },
    });
    expect(response.status).toBe(400);
  });
});
