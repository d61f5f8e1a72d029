// A real 3-node Redis Cluster on loopback: three `redis-server --cluster-enabled yes` on free
// ports, joined by `redis-cli --cluster create` (3 masters, no replicas), ready when every
// node reports cluster_state:ok.
import { spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { startRedis, type PrivateRedis } from './redis.js';

export interface TestCluster {
  nodes: PrivateRedis[];
  /** host:port of every node, comma-separated (the REDIS_CLUSTER_NODES form). */
  nodeList: string;
  close(): Promise<void>;
}

export async function startCluster(size = 3): Promise<TestCluster> {
  const nodes: PrivateRedis[] = [];
  try {
    for (let i = 0; i < size; i++) {
      // The cluster bus port is set, not port + 10000, which may be past 65535.
      const busPort = await freePort();
      nodes.push(
        await startRedis([
          ...['--cluster-enabled', 'yes', '--cluster-node-timeout', '5000'],
          ...['--cluster-port', String(busPort), '--cluster-config-file', 'nodes.conf'],
        ]),
      );
    }
    const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
    const created = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8' },
    );
    if (created.status !== 0) {
      throw new Error(`redis-cli --cluster create failed:\n${created.stdout}${created.stderr}`);
    }
    await untilClusterOk(nodes);
    return {
      nodes,
      nodeList: addresses.join(','),
      async close() {
        await Promise.all(nodes.map((node) => node.destroy()));
      },
    };
  } catch (error) {
    await Promise.all(nodes.map((node) => node.destroy()));
    throw error;
  }
}

async function untilClusterOk(nodes: PrivateRedis[]) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const states = await Promise.all(
      nodes.map(async (node) => {
        const client = new Redis(node.url, { lazyConnect: true });
        try {
          return /cluster_state:ok/.test(await client.cluster('INFO'));
        } finally {
          client.disconnect();
        }
      }),
    );
    if (states.every(Boolean)) return;
    if (Date.now() > deadline) throw new Error('the cluster did not reach cluster_state:ok');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
