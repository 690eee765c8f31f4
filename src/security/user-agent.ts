import Bowser from 'bowser';

/**
 * Coarse facts about a client from its User-Agent, through bowser: browser family and
 * operating system, nothing more (no versions, no device model), so a person's sign-in
 * history and session list help them recognise their own devices without fingerprinting them.
 */
export interface ClientDescription {
  browser: string;
  os: string;
}

/** Bowser's longer names, as people say them. */
const shortNames: Record<string, string> = {
  'Microsoft Edge': 'Edge',
  'Samsung Internet for Android': 'Samsung Internet',
  'Chrome OS': 'ChromeOS',
};

const named = (name: string | undefined) => (name ? (shortNames[name] ?? name) : 'unknown');

/** 'unknown' when nothing is recognised; the page shows that in the reader's language. */
export function describeUserAgent(userAgent: string | undefined): ClientDescription {
  const text = (userAgent ?? '').slice(0, 512).trim();
  if (!text) return { browser: 'unknown', os: 'unknown' };
  const parsed = Bowser.parse(text);
  return { browser: named(parsed.browser.name), os: named(parsed.os.name) };
}
