// A self-signed certificate for loopback, made with openssl, and a redis-server that speaks
// TLS with it (the Heroku Key-Value Store case: rediss:// and a certificate no CA signed).
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { startRedis, type PrivateRedis } from './redis.js';

export interface TlsRedis {
  /** rediss://127.0.0.1:<tls port> */
  url: string;
  redis: PrivateRedis;
  close(): Promise<void>;
}

/**
 * Undefined, after printing why, when openssl is missing (outside CI, where .ci/run installs
 * it and its absence is an error).
 */
export async function startTlsRedis(): Promise<TlsRedis | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'offload-tls-'));
  const made = spawnSync('openssl', [
    ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1'],
    ...['-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
  ]);
  if (made.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    if (process.env.CI === 'true') throw new Error('openssl is needed for the TLS tests in CI');
    console.log('      skipped: openssl is not on PATH, so no self-signed certificate can be made');
    return undefined;
  }
  const port = await freePort();
  const redis = await startRedis([
    ...['--tls-port', String(port)],
    ...['--tls-cert-file', join(dir, 'cert.pem'), '--tls-key-file', join(dir, 'key.pem')],
    ...['--tls-auth-clients', 'no'],
  ]);
  return {
    url: `rediss://127.0.0.1:${port}`,
    redis,
    async close() {
      await redis.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
