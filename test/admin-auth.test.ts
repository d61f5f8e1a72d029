import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import express, { type Express } from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { adminAuth } from '../src/http/admin-auth.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { requestLog } from '../src/http/request-log.js';

const PASSWORD = 'correct horse battery staple';
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** A logger whose lines land in an array, to see what the guard says. */
function capturedLog() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

function appWith(password: string | undefined, log = capturedLog().log): Express {
  const app = express();
  app.use(requestLog(log));
  app.use('/admin', adminAuth({ password, log, area: 'test area' }));
  app.all('/admin/thing', (req, res) => {
    res.json({ method: req.method });
  });
  return app;
}

describe('adminAuth', () => {
  it('when ADMIN_PASSWORD is unset, then the area is a 404 and the log says it is off', async () => {
    const { log, lines } = capturedLog();
    const app = appWith(undefined, log);
    await request(app).get('/admin/thing').auth('admin', PASSWORD).expect(404);
    await request(app).post('/admin/thing').expect(404);
    assert.ok(
      lines.some(
        (line) => line.area === 'test area' && /off.*ADMIN_PASSWORD/.test(String(line.msg)),
      ),
      'an "off" line naming ADMIN_PASSWORD',
    );
  });

  it('when no or a wrong password is given, then 401 with a Basic challenge', async () => {
    const app = appWith(PASSWORD);
    const none = await request(app).get('/admin/thing').expect(401);
    assert.match(String(none.headers['www-authenticate']), /^Basic realm="offload test area"/);
    await request(app)
      .get('/admin/thing')
      .set('Authorization', basic('admin', 'wrong'))
      .expect(401);
    await request(app)
      .get('/admin/thing')
      .set('Authorization', basic('admin', `${PASSWORD}x`))
      .expect(401);
    await request(app).get('/admin/thing').set('Authorization', basic('admin', '')).expect(401);
    await request(app).get('/admin/thing').set('Authorization', 'Bearer abc').expect(401);
    await request(app).get('/admin/thing').set('Authorization', 'Basic bm9jb2xvbg==').expect(401); // "nocolon"
  });

  it('when the password is right, then any user name gets in, and a colon in it is kept', async () => {
    await request(appWith(PASSWORD))
      .get('/admin/thing')
      .set('Authorization', basic('ops', PASSWORD))
      .expect(200);
    const colons = 'a:b:c:d:e:f:g:h';
    await request(appWith(colons))
      .get('/admin/thing')
      .set('Authorization', basic('x', colons))
      .expect(200);
  });

  describe('writes (CSRF)', () => {
    const app = appWith(PASSWORD);
    const post = () =>
      request(app).post('/admin/thing').set('Authorization', basic('admin', PASSWORD));

    it('when another site sends a write, then 403 even with the right password', async () => {
      await post().set('Sec-Fetch-Site', 'cross-site').expect(403);
      await post().set('Sec-Fetch-Site', 'same-site').expect(403);
      await request(app)
        .delete('/admin/thing')
        .set('Authorization', basic('admin', PASSWORD))
        .set('Origin', 'https://evil.example')
        .expect(403);
      await post().set('Origin', 'null').expect(403);
    });

    it('when the write comes from this origin, then it passes', async () => {
      await post().set('Sec-Fetch-Site', 'same-origin').expect(200, { method: 'POST' });
      const res = await post()
        .set('Host', 'app.example:8080')
        .set('Origin', 'https://app.example:8080');
      assert.equal(res.status, 200);
    });

    it('when the Origin host differs only by port, then 403', async () => {
      await post()
        .set('Host', 'app.example:8080')
        .set('Origin', 'https://app.example:9090')
        .expect(403);
    });

    it('when a client sends neither Sec-Fetch-Site nor Origin (curl), then the password is enough', async () => {
      await post().expect(200);
    });

    it('when a cross-site request only reads, then it passes (reads change nothing)', async () => {
      await request(app)
        .get('/admin/thing')
        .set('Authorization', basic('admin', PASSWORD))
        .set('Sec-Fetch-Site', 'cross-site')
        .expect(200);
    });
  });
});

describe('ADMIN_PASSWORD and ADMIN_WRITES in the configuration', () => {
  it('when the password is short, then the configuration is refused, naming the key', () => {
    assert.throws(
      () => loadConfig({ ADMIN_PASSWORD: 'short' }),
      (error: unknown) =>
        error instanceof ConfigError && /^ADMIN_PASSWORD:/.test(error.problems.join()),
    );
  });

  it('when unset, then the admin area is off and read-only', () => {
    const config = loadConfig({});
    assert.equal(config.ADMIN_PASSWORD, undefined);
    assert.equal(config.ADMIN_WRITES, false);
    assert.equal(loadConfig({ ADMIN_WRITES: 'true' }).ADMIN_WRITES, true);
  });
});
