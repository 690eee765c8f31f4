import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/*
 * The layout's rules (../shared/design.md), checked on the source: imports go one way, and
 * oidc-provider's storage table is read and written in one place.
 */

const srcDirectory = fileURLToPath(new URL('../../src/', import.meta.url));

function sourceFiles(directory = srcDirectory): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(directory, entry.name)) : entry.name.endsWith('.ts') ? [join(directory, entry.name)] : [],
  );
}

const files = sourceFiles().map((path) => ({ path: relative(srcDirectory, path), text: readFileSync(path, 'utf8') }));

/** The top folder of a source file ('accounts', 'oidc', …), or the file itself at the top. */
const layerOf = (path: string) => path.split('/')[0]!;

/** What each layer may not import. Domain folders sit below oidc, which sits below the workflows and the doors. */
const forbidden: Record<string, string[]> = {
  domain: ['oidc', 'use-cases', 'http', 'cli', 'server.ts'],
  oidc: ['use-cases', 'http', 'cli', 'server.ts'],
  'use-cases': ['http', 'cli', 'server.ts'],
};
const domainFolders = ['accounts', 'audit', 'clients', 'factors', 'mail', 'security', 'logout', 'i18n', 'db'];

function importsOf(file: { path: string; text: string }): string[] {
  const specifiers = [...file.text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((match) => match[1]!);
  return specifiers.map((specifier) => relative(srcDirectory, join(srcDirectory, file.path, '..', specifier)));
}

describe('the layout', () => {
  it('has the layers the design names', () => {
    for (const layer of [...domainFolders, 'oidc', 'use-cases', 'http', 'cli'])
      expect(
        files.some((file) => layerOf(file.path) === layer),
        layer,
      ).toBe(true);
  });

  it('imports only towards the base: domain < oidc < use-cases < http and cli', () => {
    const violations: string[] = [];
    for (const file of files) {
      const layer = domainFolders.includes(layerOf(file.path)) ? 'domain' : layerOf(file.path);
      const banned = forbidden[layer] ?? [];
      for (const target of importsOf(file)) if (banned.includes(layerOf(target))) violations.push(`${file.path} imports ${target}`);
    }
    expect(violations).toEqual([]);
  });

  it("touches oidc-provider's storage table only in the adapter and the query module beside it", () => {
    const touching = files.filter((file) => file.text.includes('oidc_payloads')).map((file) => file.path);
    expect(touching.sort()).toEqual(['oidc/adapter.ts', 'oidc/artefacts.ts']);
  });
});
