// A real S3-API server for the tests: s3rver (an npm package that implements S3's REST
// protocol, SigV4 signatures, multipart uploads and ListObjectsV2 on a directory), in a child
// process on a free loopback port, with one bucket. No mock: the AWS SDK talks HTTP to it.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface TestS3 {
  /** The configuration keys that point the app at this server's bucket. */
  env: Record<string, string>;
  bucket: string;
  /** Where the server keeps the bucket's objects (`<dir>/<bucket>/<key>._S3rver_object`). */
  dir: string;
  close(): Promise<void>;
}

// s3rver ships no bin file in this version; its class is started in a child node process.
// One correction, before s3rver loads: for a path-style bucket request (ListObjectsV2), the
// AWS SDK v3 sends and signs the path `/<bucket>/`, and s3rver canonicalizes it as
// `/<bucket>`, so every signature fails. The wrapper makes s3rver's own code build
// `/<bucket>/` (its virtual-host branch puts the mount path after the bucket) for that case
// only, and restores the request before it goes on: signatures are still checked, by s3rver.
const SERVER = `
const { dirname, join } = require('node:path');
const auth = join(dirname(require.resolve('@20minutes/s3rver')), 'middleware', 'authentication.js');
const original = require(auth);
require.cache[auth].exports = () => {
  const check = original();
  return (ctx, next) => {
    if (ctx.state.vhost || !ctx.params.bucket || ctx.params.key || !ctx.path.endsWith('/')) {
      return check(ctx, next);
    }
    const saved = ctx.mountPath;
    ctx.state.vhost = true;
    ctx.mountPath = '/';
    return check(ctx, () => {
      ctx.state.vhost = false;
      ctx.mountPath = saved;
      return next();
    });
  };
};
const S3rver = require('@20minutes/s3rver');
const [directory, bucket] = process.argv.slice(1);
new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true,
  configureBuckets: [{ name: bucket }] })
  .run()
  .then(({ port }) => console.log(JSON.stringify({ port })));
`;

export async function startS3(bucket = 'offload-test'): Promise<TestS3> {
  const dir = await mkdtemp(join(tmpdir(), 'offload-s3-'));
  const child = spawn(process.execPath, ['-e', SERVER, dir, bucket], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const line = await Promise.race([
    once(createInterface({ input: child.stdout }), 'line').then(([text]) => String(text)),
    exited.then(([code]) => {
      throw new Error(`s3rver exited with ${String(code)} before listening`);
    }),
  ]);
  const { port } = JSON.parse(line) as { port: number };
  return {
    bucket,
    dir,
    env: {
      S3_BUCKET: bucket,
      S3_ENDPOINT: `http://127.0.0.1:${port}`,
      S3_FORCE_PATH_STYLE: 'true',
      S3_REGION: 'us-east-1',
      // s3rver's one account; it checks SigV4 signatures made with this pair.
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill();
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
