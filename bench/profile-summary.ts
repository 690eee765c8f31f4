/**
 * Summarises a .cpuprofile (from BENCH_CPU_PROF=1): self time by package/module and the
 * top functions, self and inclusive. Usage: node bench/out/build/bench/profile-summary.js <file.cpuprofile> [top]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArgument] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-summary <file.cpuprofile> [top]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
const selfMicros = new Map<number, number>();
profile.samples.forEach((id, i) => selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

function moduleOf(url: string): string {
  if (!url) return '(native/vm)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return url;
  const own = /\/(dist|bench\/out\/build)\/(.*)$/.exec(url);
  return own ? `ours:${own[2]}` : url;
}

const byModule = new Map<string, number>();
const byFunction = new Map<string, number>();
let total = 0;
for (const [id, micros] of selfMicros) {
  const node = nodes.get(id)!;
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || '(anonymous)';
  const module = ['(idle)', '(program)', '(garbage collector)'].includes(name) ? name : moduleOf(url);
  byModule.set(module, (byModule.get(module) ?? 0) + micros);
  const key = `${name} ${moduleOf(url)}:${lineNumber + 1}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + micros);
  total += micros;
}
// Inclusive time: each sample counts once for every distinct function on its stack.
const parents = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
const keyOf = (node: ProfileNode) =>
  `${node.callFrame.functionName || '(anonymous)'} ${moduleOf(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`;
const inclusive = new Map<string, number>();
for (const [id, micros] of selfMicros) {
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parents.get(at)) seen.add(keyOf(nodes.get(at)!));
  for (const key of seen) inclusive.set(key, (inclusive.get(key) ?? 0) + micros);
}
for (const key of [...inclusive.keys()]) if (/^\((root|idle|program|garbage collector)\)/.test(key)) inclusive.delete(key);
const busy = total - (byModule.get('(idle)') ?? 0);
const top = Number(topArgument ?? 25);
const print = (title: string, map: Map<string, number>) => {
  process.stdout.write(`\n${title} (share of non-idle time ${(busy / 1e6).toFixed(1)} s)\n`);
  for (const [key, micros] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${((micros / busy) * 100).toFixed(1).padStart(5)}%  ${key}\n`);
  }
};
print('self time by module', byModule);
print('self time by function', byFunction);
print('inclusive time by function', inclusive);
