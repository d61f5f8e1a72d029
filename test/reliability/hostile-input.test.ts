// Issue #8, item 6: hostile input on every POST route of the real `web` process → only 4xx,
// never a 5xx or a crash, and nothing enqueued (every queue counted) or stored. The routes'
// own tests (test/routes/) name each problem; this table throws everything at all of them.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import { sharedRedisUrl } from '../harness/global.js';
import { createDatabase } from '../harness/postgres.js';
import { makeImage } from '../harness/images.js';
import { multipart, MULTIPART_TYPE } from '../harness/multipart.js';
import { startStack, type Stack } from '../harness/stack.js';

interface Case {
  what: string;
  body: string | Buffer;
  type?: string;
  headers?: Record<string, string>;
  query?: string;
}

const JSON_TYPE = 'application/json';
const json = (value: unknown) => JSON.stringify(value);
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

/** A valid body for each JSON route, and the fields that end up in mail or HTTP headers. */
const ROUTES = {
  '/signup': {
    valid: { email: 'ann@example.com', name: 'Ann' },
    headerBound: ['email', 'name'],
  },
  '/webhooks': {
    valid: { url: 'https://example.com/hook', event: 'user.created', payload: { a: 1 } },
    headerBound: ['event', 'url'],
  },
  '/reports': {
    valid: { email: 'ann@example.com', title: 'Class of 2030', sample: 2 },
    headerBound: ['email', 'title'],
  },
} as const;

const INJECTIONS = ['\r\nBcc: evil@example.org', '\nX-Injected: 1', '\rX', '\0', 'a\u0000b'];
const WRONG_TYPES: unknown[] = [null, 42, true, [], {}, ['ann@example.com'], { $ne: null }];

/** Bad Idempotency-Key headers: each alone would make a valid request a 400. */
const BAD_KEYS: Record<string, string>[] = [
  { 'Idempotency-Key': 'short' },
  { 'Idempotency-Key': `${'k'.repeat(20)} with spaces` },
  { 'Idempotency-Key': 'k'.repeat(256) },
  { 'Idempotency-Key': `${'k'.repeat(20)}\u00e9` }, // latin-1, not ASCII
  { 'Idempotency-Key': `${'k'.repeat(20)}\t${'k'.repeat(20)}` }, // (outer blanks are trimmed)
  { 'Idempotency-Key': '' },
];

function jsonCases(route: keyof typeof ROUTES): Case[] {
  const { valid, headerBound } = ROUTES[route];
  const cases: Case[] = [
    { what: 'invalid JSON', body: '{"email":', type: JSON_TYPE },
    { what: 'JSON with a trailing comma', body: '{"email":"a@example.com",}', type: JSON_TYPE },
    { what: 'an empty body', body: '', type: JSON_TYPE },
    { what: 'JSON null', body: 'null', type: JSON_TYPE },
    { what: 'a JSON array', body: json([valid]), type: JSON_TYPE },
    { what: 'a JSON string', body: '"x"', type: JSON_TYPE },
    { what: 'a JSON number', body: '42', type: JSON_TYPE },
    { what: 'no fields', body: '{}', type: JSON_TYPE },
    { what: 'an extra field', body: json({ ...valid, admin: true }), type: JSON_TYPE },
    {
      what: '__proto__',
      body: `{"__proto__":{"admin":true},${json(valid).slice(1)}`,
      type: JSON_TYPE,
    },
    {
      what: 'constructor',
      body: json({ ...valid, constructor: { prototype: {} } }),
      type: JSON_TYPE,
    },
    {
      what: 'deep nesting',
      body: json({ ...valid, deep: 0 }).replace('0', nested(5_000)),
      type: JSON_TYPE,
    },
    { what: 'valid JSON as text/plain', body: json(valid), type: 'text/plain' },
    { what: 'valid JSON with no Content-Type', body: json(valid) },
    {
      what: 'a form',
      body: new URLSearchParams(valid as Record<string, string>).toString(),
      type: 'application/x-www-form-urlencoded',
    },
    {
      what: 'XML',
      body: '<signup><email>ann@example.com</email></signup>',
      type: 'application/xml',
    },
    {
      what: 'JSON in an unsupported charset',
      body: json(valid),
      type: `${JSON_TYPE}; charset=koi8-r`,
    },
    {
      what: 'gzip that is not gzip',
      body: 'not gzip',
      type: JSON_TYPE,
      headers: { 'Content-Encoding': 'gzip' },
    },
    {
      what: 'an unknown Content-Encoding',
      body: json(valid),
      type: JSON_TYPE,
      headers: { 'Content-Encoding': 'x-evil' },
    },
    {
      what: 'a gzip bomb over the limit',
      body: gzipSync(json({ ...valid, pad: 'x'.repeat(5_000_000) })),
      type: JSON_TYPE,
      headers: { 'Content-Encoding': 'gzip' },
    },
    {
      what: 'a body over the limit',
      body: json({ ...valid, pad: 'x'.repeat(3_000_000) }),
      type: JSON_TYPE,
    },
    ...BAD_KEYS.map((headers) => ({
      what: `Idempotency-Key ${JSON.stringify(headers['Idempotency-Key']).slice(0, 30)}`,
      body: json(valid),
      type: JSON_TYPE,
      headers,
    })),
  ];
  for (const field of Object.keys(valid)) {
    const without = Object.fromEntries(Object.entries(valid).filter(([key]) => key !== field));
    // A title is optional (it has a default); any JSON is a payload; a number is a sample.
    if (field !== 'title')
      cases.push({ what: `no ${field}`, body: json(without), type: JSON_TYPE });
    if (field === 'payload') continue;
    for (const wrong of WRONG_TYPES.filter((w) => !(field === 'sample' && w === 42))) {
      cases.push({
        what: `${field}: ${json(wrong)}`,
        body: json({ ...valid, [field]: wrong }),
        type: JSON_TYPE,
      });
    }
    if (field !== 'sample') {
      cases.push({
        what: `${field}: 10,000 characters`,
        body: json({ ...valid, [field]: 'x'.repeat(10_000) }),
        type: JSON_TYPE,
      });
    }
  }
  for (const field of headerBound) {
    const base = (valid as Record<string, string>)[field]!;
    for (const injected of INJECTIONS) {
      cases.push({
        what: `${field} with ${json(injected)}`,
        body: json({ ...valid, [field]: base + injected }),
        type: JSON_TYPE,
      });
    }
  }
  return cases;
}

async function thumbnailCases(): Promise<Case[]> {
  const photo = await makeImage('png', 16, 16);
  const form = (parts: Parameters<typeof multipart>[0]) => multipart(parts);
  const image = { name: 'image', filename: 'a.png', type: 'image/png', data: photo };
  return [
    {
      what: 'JSON instead of a form',
      body: json({ image: photo.toString('base64') }),
      type: JSON_TYPE,
    },
    { what: 'multipart without a boundary', body: form([image]), type: 'multipart/form-data' },
    {
      what: 'multipart with another boundary',
      body: form([image]),
      type: 'multipart/form-data; boundary=nope',
    },
    { what: 'garbage as multipart', body: 'garbage', type: MULTIPART_TYPE },
    { what: 'no file', body: form([{ name: 'title', data: 'x' }]), type: MULTIPART_TYPE },
    {
      what: 'the file under another name',
      body: form([{ ...image, name: 'file' }]),
      type: MULTIPART_TYPE,
    },
    {
      what: 'an extra field',
      body: form([image, { name: 'admin', data: 'true' }]),
      type: MULTIPART_TYPE,
    },
    { what: 'two files', body: form([image, image]), type: MULTIPART_TYPE },
    {
      what: 'a file name with CR/LF',
      body: form([{ ...image, filename: 'a\r\nContent-Type: text/html\r\n.png' }]),
      type: MULTIPART_TYPE,
    },
    {
      what: 'a file name with NUL',
      body: form([{ ...image, filename: 'a\0.png' }]),
      type: MULTIPART_TYPE,
    },
    {
      what: 'a path as file name',
      body: form([{ ...image, filename: '../../etc/passwd' }]),
      type: MULTIPART_TYPE,
    },
    { what: 'a text file', body: form([{ ...image, data: 'hello' }]), type: MULTIPART_TYPE },
    { what: 'an empty file', body: form([{ ...image, data: '' }]), type: MULTIPART_TYPE },
    { what: 'a cut-off form', body: multipart([image], { close: false }), type: MULTIPART_TYPE },
    {
      // fetch writes it all before it reads: the 413 must still arrive (drained, then closed).
      what: 'a file over UPLOAD_MAX_BYTES',
      body: form([{ ...image, data: Buffer.concat([photo, Buffer.alloc(11 * 1024 * 1024)]) }]),
      type: MULTIPART_TYPE,
    },
    ...BAD_KEYS.map((headers) => ({
      what: `Idempotency-Key ${JSON.stringify(headers['Idempotency-Key']).slice(0, 30)}`,
      body: form([image]),
      type: MULTIPART_TYPE,
      headers,
    })),
  ];
}

function csvCases(): Case[] {
  const roster = { name: 'roster', filename: 'r.csv', type: 'text/csv', data: 'id,name\n1,Ann\n' };
  const email = { name: 'email', data: 'ann@example.com' };
  return [
    ...INJECTIONS.map((injected) => ({
      what: `CSV form, email with ${json(injected)}`,
      body: multipart([{ ...email, data: email.data + injected }, roster]),
      type: MULTIPART_TYPE,
    })),
    ...INJECTIONS.map((injected) => ({
      what: `CSV form, title with ${json(injected)}`,
      body: multipart([email, { name: 'title', data: `T${injected}` }, roster]),
      type: MULTIPART_TYPE,
    })),
    {
      what: 'CSV form, a NUL in a name',
      body: multipart([email, { ...roster, data: 'id,name\n1,A\0n\n' }]),
      type: MULTIPART_TYPE,
    },
    {
      what: 'CSV form, a roster over 1 MB',
      body: multipart([email, { ...roster, data: `id,name\n${'1,Ann\n'.repeat(300_000)}` }]),
      type: MULTIPART_TYPE,
    },
    {
      what: 'CSV form, a name in a script the cards cannot draw (Hebrew)',
      body: multipart([email, { ...roster, data: 'id,name\n1,אבי כהן\n' }]),
      type: MULTIPART_TYPE,
    },
    {
      what: 'CSV form, a name with a bidi override',
      body: multipart([email, { ...roster, data: 'id,name\n1,Ann\u202egpj.exe\n' }]),
      type: MULTIPART_TYPE,
    },
    {
      what: 'CSV form, a title in a script the cards cannot draw (Hangul)',
      body: multipart([email, { name: 'title', data: '서울 고등학교' }, roster]),
      type: MULTIPART_TYPE,
    },
    {
      what: 'JSON roster, a name in Arabic',
      body: json({ email: 'ann@example.com', students: [{ id: '1', name: 'ليلى' }] }),
      type: JSON_TYPE,
    },
    {
      what: 'CSV form, an extra field',
      body: multipart([email, roster, { name: 'admin', data: '1' }]),
      type: MULTIPART_TYPE,
    },
    {
      what: 'JSON roster, deeply nested students',
      body: `{"email":"ann@example.com","students":${nested(500_000)}}`,
      type: JSON_TYPE,
    },
    {
      what: 'JSON roster, rows of the wrong type',
      body: json({ email: 'ann@example.com', students: [1, 'x', null, [], { id: {} }] }),
      type: JSON_TYPE,
    },
    {
      what: 'JSON roster, a huge sample',
      body: json({ email: 'ann@example.com', sample: 1e300 }),
      type: JSON_TYPE,
    },
    {
      what: 'JSON roster, a negative sample',
      body: json({ email: 'ann@example.com', sample: -1 }),
      type: JSON_TYPE,
    },
  ];
}

describe('reliability: hostile input on every POST route', function () {
  this.timeout(120_000);
  let stack: Stack;
  let databaseUrl = '';
  const table: [route: string, Case][] = [];
  /** Rows in the users and outbox tables: a refused signup adds none. */
  const rows = async () => {
    const client = new pg.Client(databaseUrl);
    await client.connect();
    try {
      const {
        rows: [row],
      } = await client.query<{ users: number; outbox: number }>(
        'SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM offload_outbox)::int AS outbox',
      );
      return row!;
    } finally {
      await client.end();
    }
  };

  before(async () => {
    // Web only: nothing may be enqueued anyway. With a database, as deployed: the signup stores
    // its user and records its job in the outbox (issue 22).
    databaseUrl = await createDatabase();
    stack = await startStack(sharedRedisUrl(), { DATABASE_URL: databaseUrl });
    await stack.startWeb({ LOG_LEVEL: 'warn' });
    for (const route of Object.keys(ROUTES) as (keyof typeof ROUTES)[]) {
      for (const c of jsonCases(route)) table.push([route, c]);
    }
    // Only /signup reads its query (other routes ignore unknown parameters, as they should).
    for (const query of ['mode=evil', 'mode=sync&mode=offload', 'mode=']) {
      const body = json(ROUTES['/signup'].valid);
      table.push(['/signup', { what: `?${query}`, body, type: JSON_TYPE, query }]);
    }
    for (const c of await thumbnailCases()) table.push(['/thumbnails', c]);
    for (const c of csvCases()) table.push(['/reports', c]);
  });
  after(() => stack.close());

  /** Each JSON route's key, bound (before the table) to its valid body: reused with another. */
  const BOUND_KEY = `bound-${Date.now()}-key-for-the-table`;
  const OTHER: Record<keyof typeof ROUTES, unknown> = {
    '/signup': { ...ROUTES['/signup'].valid, name: 'Bob' },
    '/webhooks': { ...ROUTES['/webhooks'].valid, payload: { a: 2 } },
    '/reports': { ...ROUTES['/reports'].valid, sample: 3 },
  };
  // The address the binding request registered, again (409), in any case, with no key.
  for (const email of ['ann@example.com', 'ANN@Example.COM']) {
    const body = json({ ...ROUTES['/signup'].valid, email });
    table.push([
      '/signup',
      { what: `an email already registered (${email})`, body, type: JSON_TYPE },
    ]);
  }
  for (const route of Object.keys(ROUTES) as (keyof typeof ROUTES)[]) {
    table.push([
      route,
      {
        what: 'an Idempotency-Key already used with another body',
        body: json(OTHER[route]),
        type: JSON_TYPE,
        headers: { 'Idempotency-Key': BOUND_KEY },
      },
    ]);
  }

  const send = async (route: string, { body, type, headers = {}, query }: Case) => {
    const res = await fetch(`${stack.base}${route}${query ? `?${query}` : ''}`, {
      method: 'POST',
      headers: { ...(type ? { 'content-type': type } : {}), ...headers },
      body: typeof body === 'string' ? body : new Uint8Array(body),
    });
    const text = await res.text();
    return { status: res.status, text };
  };
  const storedFiles = async () =>
    (
      await readdir(stack.env.STORAGE_DIR!, { recursive: true, withFileTypes: true }).catch(
        () => [],
      )
    )
      .filter((entry) => entry.isFile())
      .map((entry) => entry.name);

  it('when every route gets the whole table, then every answer is a 4xx, the process stays up, and nothing is enqueued or stored', async () => {
    assert.ok(table.length > 150, `${table.length} cases`);
    // The key the table reuses, bound to each route's valid body (those jobs are counted out).
    for (const route of Object.keys(ROUTES) as (keyof typeof ROUTES)[]) {
      const { status } = await send(route, {
        what: 'binding',
        body: json(ROUTES[route].valid),
        type: JSON_TYPE,
        headers: { 'Idempotency-Key': BOUND_KEY },
      });
      assert.equal(status, 202, route);
    }
    const bound = Object.values(await stack.counts()).reduce((a, b) => a + b, 0);
    const boundFiles = (await storedFiles()).length;
    const boundRows = await rows();
    assert.equal(boundRows.users, 1, 'the binding signup stored its user');
    const wrong: string[] = [];
    const seen = new Map<number, number>();
    for (const [route, c] of table) {
      const { status, text } = await send(route, c);
      seen.set(status, (seen.get(status) ?? 0) + 1);
      if (status < 400 || status >= 500)
        wrong.push(`POST ${route} ${c.what}: ${status} ${text.slice(0, 200)}`);
      assert.equal(stack.web!.child.exitCode, null, `web crashed on POST ${route} ${c.what}`);
    }
    assert.deepEqual(wrong, [], `not a 4xx:\n${wrong.join('\n')}`);
    assert.equal((await fetch(`${stack.base}/healthz`)).status, 200);
    const counts = await stack.counts();
    assert.equal(
      Object.values(counts).reduce((a, b) => a + b, 0),
      bound,
      JSON.stringify(counts),
    );
    assert.equal((await storedFiles()).length, boundFiles);
    assert.deepEqual(await rows(), boundRows, 'no user or outbox row added');
    assert.ok(seen.get(409), 'the registered address was refused (409)');
    console.log(
      `      ${table.length} hostile requests: ${[...seen].map(([s, n]) => `${n}× ${s}`).join(', ')}`,
    );
  });

  it('when each route then gets its valid request, then it is accepted and counted (the table could have failed)', async () => {
    for (const route of Object.keys(ROUTES) as (keyof typeof ROUTES)[]) {
      // A new address: the table's is registered.
      const valid =
        route === '/signup'
          ? { ...ROUTES[route].valid, email: 'zed@example.com' }
          : ROUTES[route].valid;
      const { status } = await send(route, { what: 'valid', body: json(valid), type: JSON_TYPE });
      assert.equal(status, 202, route);
    }
    assert.equal((await rows()).users, 2);
    const photo = await makeImage('png', 16, 16);
    const { status } = await send('/thumbnails', {
      what: 'valid',
      body: multipart([{ name: 'image', filename: 'a.png', type: 'image/png', data: photo }]),
      type: MULTIPART_TYPE,
    });
    assert.equal(status, 202);
    const counts = await stack.counts();
    // signup, webhook, thumbnail: one job each; the report: its chunk, then its zip step; and
    // as many again for the requests that bound the table's key (no thumbnail among them).
    assert.equal(
      Object.values(counts).reduce((a, b) => a + b, 0),
      5 + 4,
      JSON.stringify(counts),
    );
    assert.ok((await storedFiles()).length >= 2, 'the upload and the roster are stored');
  });
});
