import { recordAuditEvent } from '../../audit/log.js';
import { listSigningKeys, rotateSigningKeys } from '../../oidc/keys.js';
import { rotateCookieKeys } from '../../oidc/secrets.js';
import type { Command } from '../command.js';
import { describeTable } from '../output.js';

const activateImmediately = {
  'activate-immediately': { type: 'boolean' },
} as const;

// Running instances re-read keys every KEY_REFRESH_SECONDS (oidc/key-refresh.ts): no restart.
const whenItApplies = (activatesAt: Date, immediate: boolean, refreshSeconds: number) =>
  immediate
    ? `Every running instance applies it within ${refreshSeconds} s (KEY_REFRESH_SECONDS).`
    : `Every running instance publishes the new key within ${refreshSeconds} s and signs with it from ${activatesAt.toISOString()}.`;

export const keyCommands: Command[] = [
  {
    name: 'keys list',
    usage: 'idp keys list',
    summary: 'list signing keys with their status (active, pending, retiring, retired); never key material',
    options: {},
    async run(runtime) {
      const keys = await listSigningKeys(runtime.db);
      return {
        json: keys,
        text: describeTable(
          keys.map((k) => ({
            kid: k.kid,
            alg: k.alg,
            status: k.status,
            created_at: k.createdAt,
            activates_at: k.activatesAt,
            retires_at: k.retiresAt,
            retired_at: k.retiredAt,
            kek: k.kek ?? 'none (plaintext)',
          })),
          ['kid', 'alg', 'status', 'created_at', 'activates_at', 'retires_at', 'retired_at', 'kek'],
        ),
      };
    },
  },
  {
    name: 'keys rotate',
    usage: 'idp keys rotate [--activate-immediately] [--compromised]',
    summary:
      'add new signing keys, published now and signing after KEY_ACTIVATION_DELAY_SECONDS (or at once); old keys keep verifying unless --compromised withdraws them',
    options: { ...activateImmediately, compromised: { type: 'boolean' } },
    async run(runtime, values) {
      const compromised = values['compromised'] === true;
      const immediate = compromised || values['activate-immediately'] === true;
      const rotation = await rotateSigningKeys(runtime.db, runtime.config, { activateImmediately: immediate, compromised });
      await recordAuditEvent(runtime.db, {
        event: 'key.rotated',
        outcome: 'success',
        actor: 'admin',
        details: { keys: 'signing', kids: rotation.created.map((key) => key.kid), immediate, compromised },
      });
      const lines = [
        ...rotation.created.map((key) => `new ${key.alg} key ${key.kid}: published now, signs from ${rotation.activatesAt.toISOString()}`),
        ...rotation.retiring.map((key) =>
          compromised
            ? `${key.alg} key ${key.kid}: withdrawn from the JWKS now; every token it signed stops verifying`
            : `${key.alg} key ${key.kid}: signs until ${key.retiresAt.toISOString()}, published until ${key.retiredAt.toISOString()}`,
        ),
        ...rotation.deleted.map((kid) => `deleted retired key ${kid}`),
        whenItApplies(rotation.activatesAt, immediate, runtime.config.keyRefreshSeconds),
      ];
      return { json: rotation, text: lines.join('\n') };
    },
  },
  {
    name: 'keys rotate-cookie-keys',
    usage: 'idp keys rotate-cookie-keys [--activate-immediately]',
    summary: 'add a new cookie signing key (when COOKIE_KEYS is unset); previous keys keep verifying while sessions last',
    options: activateImmediately,
    async run(runtime, values) {
      const immediate = values['activate-immediately'] === true;
      const rotation = await rotateCookieKeys(runtime.db, runtime.config, { activateImmediately: immediate });
      await recordAuditEvent(runtime.db, {
        event: 'key.rotated',
        outcome: 'success',
        actor: 'admin',
        details: { keys: 'cookie', immediate },
      });
      return {
        json: rotation,
        text: [
          `new cookie key: signs from ${rotation.activatesAt.toISOString()}; ${rotation.keys} keys kept, ${rotation.dropped} dropped`,
          whenItApplies(rotation.activatesAt, immediate, runtime.config.keyRefreshSeconds),
        ].join('\n'),
      };
    },
  },
];
