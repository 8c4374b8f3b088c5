#!/usr/bin/env node
// edgekit's device-side program for TensorFlow.js under Node.js (edgekit.link/1 on
// stdin/stdout, docs/protocol.md). It loads a graph model (model.json and its weight
// shards) straight from disk, with no web server, on @tensorflow/tfjs's wasm or cpu backend.
'use strict';

// Frames own stdout: anything TF.js prints (it greets Node users with console.log) goes to stderr.
console.log = console.info = console.debug = console.error;

const fs = require('fs');
const os = require('os');
const path = require('path');

const link = require('./link.js');
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');

// The .wasm binaries: from this package's node_modules, or EDGEKIT_TFJS_WASM_DIR.
const WASM_DIR = process.env.EDGEKIT_TFJS_WASM_DIR || path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), path.sep);
wasm.setWasmPaths(WASM_DIR.endsWith(path.sep) ? WASM_DIR : WASM_DIR + path.sep);

function packageVersion(name) {
  try {
    return require(name + '/package.json').version;
  } catch (err) {
    return null;
  }
}

// A tf.io handler that reads model.json and its shards from the folder it is in.
function readModel(file) {
  let json;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error('cannot read ' + file + ': ' + link.firstLine(err));
  }
  const folder = path.dirname(file);
  const handler = {
    load: async () =>
      tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs = [];
        const parts = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const p of group.paths) parts.push(fs.readFileSync(path.join(folder, p)));
        }
        const all = Buffer.concat(parts);
        return [specs, all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)];
      }),
  };
  return { json: json, handler: handler };
}

function environment() {
  const cpus = os.cpus();
  return {
    cpu: cpus.length ? cpus[0].model : os.arch(),
    cores: cpus.length,
    machine: os.machine ? os.machine() : os.arch(),
    os: os.type() + ' ' + os.release(),
    uname: [os.type(), os.hostname(), os.release(), os.version ? os.version() : '', os.machine ? os.machine() : os.arch()].join(' '),
    hostname: os.hostname(),
    node: process.version,
    memory_bytes: os.totalmem(),
    packages: {
      '@tensorflow/tfjs': packageVersion('@tensorflow/tfjs'),
      '@tensorflow/tfjs-backend-wasm': packageVersion('@tensorflow/tfjs-backend-wasm'),
      v8: process.versions.v8,
    },
  };
}

const device = new link.Device({
  program: 'node',
  tf: tf,
  wasm: wasm,
  environment: environment,
  readModel: readModel,
  memoryBefore: () => process.memoryUsage().rss,
  // Node cannot reset its peak RSS, so this is the growth from load to now
  memory: (before) => ({ model_rss_bytes: Math.max(0, process.memoryUsage().rss - before), model_rss_basis: 'end' }),
  threadsNote: 'tfjs-backend-wasm runs single-threaded under Node.js',
});

function write(frame) {
  let offset = 0;
  while (offset < frame.byteLength) {
    try {
      offset += fs.writeSync(1, frame, offset, frame.byteLength - offset);
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err;
    }
  }
}

// Requests are answered one at a time, in order.
let pending = Buffer.alloc(0);
let busy = false;

async function drain() {
  if (busy) return;
  busy = true;
  try {
    for (;;) {
      const frame = link.decodeFrame(new Uint8Array(pending.buffer, pending.byteOffset, pending.byteLength));
      if (!frame) break;
      pending = pending.subarray(frame.size);
      if (frame.header.op === 'bye') {
        write(link.encodeFrame({ ok: true }));
        process.exit(0);
      }
      const [header, payload] = await device.handle(frame.header, frame.payload);
      write(link.encodeFrame(header, payload));
    }
  } finally {
    busy = false;
  }
}

process.stdin.on('data', (chunk) => {
  pending = pending.byteLength ? Buffer.concat([pending, chunk]) : chunk;
  drain().catch((err) => {
    process.stderr.write('edgekit node device: ' + link.firstLine(err) + '\n');
    process.exit(1);
  });
});
process.stdin.on('end', () => process.exit(0));
