// Apache AGE (PGlite: PostgreSQL compiled to WASM, with the AGE extension)
// served over the PostgreSQL wire protocol on a loopback port, for agec's
// tests and demo. All connections share one PostgreSQL session (see
// REFERENCE.md section 5).
//
// usage: node server.mjs PORTFILE [MAXCONN]
// Listens on 127.0.0.1 on a port the kernel picks, then writes that port to
// PORTFILE (atomically, via rename) once AGE is ready. Stops on SIGTERM/SIGINT.
//
// Node.js 18 or newer (check-node.cjs, imported first, refuses an older one
// with a message). The PGlite packages are loaded with import() after it and
// after the shim below, so neither is bypassed by module loading order.
import './check-node.cjs';
import { writeFileSync, renameSync } from 'node:fs';

// @electric-sql/pglite-socket dispatches CustomEvent, a global only from
// Node.js 19 on (18 has it behind --experimental-global-customevent). Where
// it is missing, a minimal one on top of the global Event (Node.js 15+):
// the event type, the Event options and a read-only `detail` (default null),
// which is all the package uses.
if (typeof globalThis.CustomEvent !== 'function') {
  globalThis.CustomEvent = class CustomEvent extends Event {
    #detail;
    constructor(type, options = {}) {
      super(type, options);
      this.#detail = options?.detail ?? null;
    }
    get detail() { return this.#detail; }
  };
}

const { PGlite } = await import('@electric-sql/pglite');
const { age } = await import('@electric-sql/pglite-age');
const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');

const portFile = process.argv[2];
const maxConnections = Number(process.argv[3] || 32);
if (!portFile) {
  console.error('usage: node server.mjs PORTFILE [MAXCONN]');
  process.exit(2);
}

const db = await PGlite.create({ extensions: { age } });
await db.exec('CREATE EXTENSION IF NOT EXISTS age');
const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections });
await server.start();
const [, port] = server.getServerConn().split(':');
writeFileSync(portFile + '.tmp', port + '\n');
renameSync(portFile + '.tmp', portFile);
console.log(`age-test-server: listening on 127.0.0.1:${port} (maxConnections ${maxConnections})`);

let stopping = false;
async function stop(sig) {
  if (stopping) return;
  stopping = true;
  console.log(`age-test-server: ${sig}, stopping`);
  try { await server.stop(); await db.close(); } finally { process.exit(0); }
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
