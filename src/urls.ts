// URL checks shared by the settings (src/config.ts) and the channel list (src/channelSettings.ts).

/** Why `raw` is not a URL with one of `protocols` (e.g. `https:`), or undefined when it is one. */
export function urlProblem(raw: string, protocols: readonly string[]): string | undefined {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    return 'expected a URL';
  }
  return protocols.includes(u.protocol) ? undefined : `expected a ${protocols.join(' or ')} URL`;
}
