// A minimal SMTP server for the email suite, in its own process (forked with an IPC channel), so
// that the bare loop in the bench process does not share its event loop: it accepts every
// message at once and drops it. Why not smtp-server (the tests' and the benefit suite's): it holds
// every new connection 100 ms before its greeting (its "early talker" check, not configurable),
// and the app's mailer opens a connection per message, so both variants would only measure
// that timer.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { loader, onCleanup } from './common.js';

export interface SmtpSink {
  url: string;
  /** Messages accepted so far. */
  received(): Promise<number>;
}

/** Forks this file as the SMTP server; stopped at clean-up. */
export async function startSmtpSink(): Promise<SmtpSink> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: [...loader],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  onCleanup(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  });
  const [url] = (await once(child, 'message')) as [string];
  return {
    url,
    async received() {
      const reply = once(child, 'message');
      child.send('count');
      return ((await reply) as [number])[0];
    },
  };
}

function serve() {
  let received = 0;
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.setEncoding('latin1');
    let buffer = '';
    let inData = false;
    socket.write('220 sink ESMTP\r\n');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          buffer = buffer.slice(end + 5);
          inData = false;
          received += 1;
          socket.write('250 accepted\r\n');
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) return;
        const line = buffer.slice(0, eol).toUpperCase();
        buffer = buffer.slice(eol + 2);
        if (line.startsWith('EHLO')) socket.write('250-sink\r\n250 8BITMIME\r\n');
        else if (line.startsWith('DATA')) {
          inData = true;
          buffer = `\r\n${buffer}`; // so "\r\n.\r\n" also ends an empty message
          socket.write('354 go on\r\n');
        } else if (line.startsWith('QUIT')) socket.end('221 bye\r\n');
        else socket.write('250 ok\r\n');
      }
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (typeof address === 'object' && address) {
      process.send?.(`smtp://127.0.0.1:${address.port}`);
    }
  });
  process.on('message', () => process.send?.(received));
  process.on('disconnect', () => process.exit(0));
  process.on('SIGINT', () => undefined); // the parent ends us
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) serve();
