import { migrate } from '../../db/migrate.js';
import { listSigningKeys } from '../../oidc/keys.js';
import type { Command } from '../command.js';
import { describeTable } from '../output.js';

export const databaseCommands: Command[] = [
  {
    name: 'db migrate',
    usage: 'idp db migrate',
    summary: 'apply pending migrations (the server also does this at start)',
    options: {},
    migrate: false,
    async run(runtime) {
      const result = await migrate(runtime.db, runtime.logger);
      return {
        json: result,
        text: result.applied.length ? `applied: ${result.applied.join(', ')}` : `up to date (${result.alreadyApplied.length} migrations)`,
      };
    },
  },
  {
    name: 'keys list',
    usage: 'idp keys list',
    summary: 'list signing keys (ids and algorithms, never key material)',
    options: {},
    async run(runtime) {
      const keys = await listSigningKeys(runtime.db);
      return {
        json: keys,
        text: describeTable(
          keys.map((k) => ({ kid: k.kid, alg: k.alg, created_at: k.createdAt, status: k.retiredAt ? 'retired' : 'active' })),
          ['kid', 'alg', 'created_at', 'status'],
        ),
      };
    },
  },
];
