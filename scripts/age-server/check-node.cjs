// The one place that says which Node.js the AGE test server needs. Run by
// scripts/bootstrap and scripts/age-test-server before anything else
// (`node check-node.cjs`: exit 0, or a message and exit 1), and imported
// first by server.mjs. Written in old JavaScript on purpose, so that even a
// Node.js too old to parse server.mjs gets this message.
//
// 18 is the oldest tested: Debian 12's nodejs (18.20), with the CustomEvent
// shim in server.mjs; 20 and newer need no shim. The PGlite packages
// declare no minimum; Node.js 16 and older are untested (and end-of-life).
'use strict';
var MIN_MAJOR = 18;
var version = process.versions.node;
if (Number(version.split('.')[0]) < MIN_MAJOR) {
  console.error('age-test-server: Node.js ' + version + ' (' + process.execPath +
                ') is too old: the AGE test server needs Node.js ' + MIN_MAJOR +
                ' or newer (Debian 12: apt-get install nodejs)');
  process.exit(1);
}
