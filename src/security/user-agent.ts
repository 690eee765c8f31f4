/**
 * Coarse facts about a client from its User-Agent: browser family and operating system,
 * nothing more (no versions, no device model), so the sign-in history helps a person
 * recognise their own devices without fingerprinting them. Order matters: Edge, Opera and
 * Samsung Internet also say "Chrome", and Chrome also says "Safari".
 */
const browsers: [RegExp, string][] = [
  [/\bEdg(e|A|iOS)?\//, 'Edge'],
  [/\b(OPR|Opera)\//, 'Opera'],
  [/\bSamsungBrowser\//, 'Samsung Internet'],
  [/\b(Firefox|FxiOS)\//, 'Firefox'],
  [/\b(HeadlessChrome|Chrome|Chromium|CriOS)\//, 'Chrome'],
  [/\bVersion\/[\d.]+.*\bSafari\//, 'Safari'],
];

const systems: [RegExp, string][] = [
  [/\b(iPhone|iPod)\b/, 'iOS'],
  [/\biPad\b/, 'iPadOS'],
  [/\bAndroid\b/, 'Android'],
  [/\bCrOS\b/, 'ChromeOS'],
  [/\bWindows\b/, 'Windows'],
  [/\bMac OS X\b|\bMacintosh\b/, 'macOS'],
  [/\bLinux\b/, 'Linux'],
];

export interface ClientDescription {
  browser: string;
  os: string;
}

const first = (table: [RegExp, string][], text: string) => table.find(([pattern]) => pattern.test(text))?.[1];

/** 'unknown' when nothing matches; the page shows that in the reader's language. */
export function describeUserAgent(userAgent: string | undefined): ClientDescription {
  const text = (userAgent ?? '').slice(0, 512);
  return { browser: first(browsers, text) ?? 'unknown', os: first(systems, text) ?? 'unknown' };
}
