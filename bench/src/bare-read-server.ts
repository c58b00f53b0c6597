/**
 * The floor of a REST read on this machine: a bare Node HTTP server (no
 * framework, no auth) that answers every request with one Redis GET, parsed
 * and serialized again. `readUnderLoad` starts it as its own process, with the
 * services' V8 flags, and loads it exactly as it loads the gateway.
 * Environment: REDIS_URL, BARE_READ_KEY. Prints `port <n>` once listening.
 */
import { createServer } from 'node:http';
import { createRedis } from '@muse/queues';

const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const key = process.env.BARE_READ_KEY!;
const server = createServer((_req, res) => {
  redis.get(key).then(
    (raw) => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(JSON.parse(raw ?? 'null')));
    },
    () => {
      res.writeHead(503);
      res.end();
    },
  );
});
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`port ${typeof addr === 'object' && addr ? addr.port : 0}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  redis.disconnect();
  process.exit(0);
});
