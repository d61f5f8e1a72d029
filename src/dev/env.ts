// The environment `npm run dev` gives the Procfile's processes. Highest first:
//   1. the real environment (`PORT=4000 npm run dev`, or what your shell exports),
//   2. `.env` (dotenv syntax, read with node's own util.parseEnv),
//   3. the development defaults below.
// Only the launcher reads .env: `node dist/...` in production never does, so a stray .env in a
// deployed tree changes nothing; there the platform's config vars are the whole configuration.
import { parseEnv } from 'node:util';

/** Development-only defaults, under anything the developer sets. */
export const DEV_DEFAULTS: Readonly<Record<string, string>> = {
  // A slow-ish pretend mail provider, so the demo page shows what inline sending costs.
  OUTBOX_DELAY_MS: '300',
};

export function devEnvironment(
  real: Record<string, string | undefined>,
  dotenv: string | undefined,
  defaults: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const merged: Record<string, string> = { ...DEV_DEFAULTS, ...defaults };
  for (const layer of [dotenv ? parseEnv(dotenv) : {}, real]) {
    for (const [key, value] of Object.entries(layer)) if (value !== undefined) merged[key] = value;
  }
  return merged;
}
