import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { environmentVariables } from '../../src/config.js';

/*
 * The cluster manifests cannot drift from the server: every variable they set is one the
 * configuration reads, the probes point at the real health endpoints, and the migration Job
 * runs the real CLI command.
 */

const directory = fileURLToPath(new URL('../../deploy/kubernetes/', import.meta.url));

interface Manifest {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: Record<string, unknown>;
}

async function manifests(): Promise<Manifest[]> {
  const files = (await readdir(directory)).filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml');
  const documents = await Promise.all(files.map(async (file) => parseAllDocuments(await readFile(`${directory}${file}`, 'utf8'))));
  return documents.flat().map((document) => {
    expect(document.errors).toEqual([]);
    return document.toJS() as Manifest;
  });
}

interface Container {
  name: string;
  command?: string[];
  env?: { name: string }[];
  readinessProbe?: { httpGet: { path: string } };
  livenessProbe?: { httpGet: { path: string } };
  resources?: { requests?: Record<string, string> };
}
const containersOf = (manifest: Manifest) =>
  ((manifest.spec as { template?: { spec: { containers: Container[] } } } | undefined)?.template?.spec.containers ?? []) as Container[];

describe('deploy/kubernetes', () => {
  it('lists every manifest in its kustomization', async () => {
    const kustomization = parseAllDocuments(await readFile(`${directory}kustomization.yaml`, 'utf8'))[0]!.toJS() as { resources: string[] };
    const files = (await readdir(directory)).filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(files.sort());
  });

  it('sets only variables the configuration reads', async () => {
    const known = new Set(environmentVariables);
    const set = (await manifests()).flatMap((manifest) => [
      ...Object.keys(manifest.data ?? {}),
      ...Object.keys(manifest.stringData ?? {}),
      ...containersOf(manifest).flatMap((container) => (container.env ?? []).map((variable) => variable.name)),
    ]);
    expect(set.length).toBeGreaterThan(10);
    expect(set.filter((name) => !known.has(name))).toEqual([]);
  });

  it('probes /readyz and /healthz, requests resources, and migrates with the CLI before the rollout', async () => {
    const all = await manifests();
    const deployment = all.find((manifest) => manifest.kind === 'Deployment')!;
    const [server] = containersOf(deployment);
    expect(server?.readinessProbe?.httpGet.path).toBe('/readyz');
    expect(server?.livenessProbe?.httpGet.path).toBe('/healthz');
    expect(server?.resources?.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    const job = all.find((manifest) => manifest.kind === 'Job')!;
    expect(containersOf(job)[0]?.command).toEqual(['node', 'dist/cli/index.js', 'db', 'migrate', '--json']);
    expect(all.map((manifest) => manifest.kind).sort()).toEqual(
      ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Job', 'PodDisruptionBudget', 'Secret', 'Service'].sort(),
    );
  });
});
