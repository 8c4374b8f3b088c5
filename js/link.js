// edgekit's device side for TensorFlow.js, shared by Node.js (node-device.js) and the
// browser page (page.js): the edgekit.link/1 frames (docs/protocol.md) and a Device that
// answers hello, env, load, infer, time and memory for one TF.js graph model.
//
// Frame, both ways: 4-byte little-endian header length, the header (UTF-8 JSON object),
// then `payload_bytes` bytes of payload: tensors as raw little-endian C-order arrays, one
// after another, never JSON lists of numbers.
//
// The host drives: it sends requests and reads one reply to each. The clock of every
// timing here is the JS engine's `performance.now()`.
(function (root, factory) {
  if (typeof module === 'object' && module.exports) module.exports = factory();
  else root.EdgekitLink = factory();
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  const PROTOCOL = 'edgekit.link/1';
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  // ------------------------------------------------------------------ frames

  function encodeFrame(header, payload) {
    const body = payload || new Uint8Array(0);
    const json = encoder.encode(JSON.stringify(Object.assign({}, header, { payload_bytes: body.byteLength })));
    const frame = new Uint8Array(4 + json.byteLength + body.byteLength);
    new DataView(frame.buffer).setUint32(0, json.byteLength, true);
    frame.set(json, 4);
    frame.set(body, 4 + json.byteLength);
    return frame;
  }

  // One frame from the start of `bytes` (a Uint8Array): {header, payload, size}, or null
  // when `bytes` does not hold a whole frame yet.
  function decodeFrame(bytes) {
    if (bytes.byteLength < 4) return null;
    const size = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
    if (bytes.byteLength < 4 + size) return null;
    const header = JSON.parse(decoder.decode(bytes.subarray(4, 4 + size)));
    const count = header.payload_bytes || 0;
    if (bytes.byteLength < 4 + size + count) return null;
    const payload = bytes.slice(4 + size, 4 + size + count);
    return { header: header, payload: payload, size: 4 + size + count };
  }

  // ------------------------------------------------------------------ tensors

  // numpy dtype name -> [typed array, the TF.js dtype it becomes]
  const DTYPES = {
    float32: [Float32Array, 'float32'],
    int32: [Int32Array, 'int32'],
    int8: [Int8Array, 'int32'],
    uint8: [Uint8Array, 'int32'],
    int16: [Int16Array, 'int32'],
    uint16: [Uint16Array, 'int32'],
    bool: [Uint8Array, 'bool'],
    float64: [Float64Array, 'float32'],
  };
  // TF.js dtype -> numpy dtype name of what dataSync() hands back
  const NUMPY = { float32: 'float32', int32: 'int32', bool: 'uint8' };

  function unpackArrays(described, payload) {
    const arrays = [];
    let offset = 0;
    for (const item of described) {
      const kind = DTYPES[item.dtype];
      if (!kind) throw new Error('TF.js takes no ' + item.dtype + ' tensors (input ' + item.name + ')');
      const count = item.shape.reduce((a, b) => a * b, 1);
      const size = count * kind[0].BYTES_PER_ELEMENT;
      if (offset + size > payload.byteLength) throw new Error("tensor '" + item.name + "' runs past the end of the payload");
      // a copy: typed arrays need aligned offsets, and the payload is released after the call
      const values = new kind[0](payload.buffer.slice(payload.byteOffset + offset, payload.byteOffset + offset + size));
      arrays.push({ name: item.name, shape: item.shape, dtype: item.dtype, tfDtype: kind[1], values: values });
      offset += size;
    }
    if (offset !== payload.byteLength) throw new Error('the payload holds ' + (payload.byteLength - offset) + ' bytes more than its tensors');
    return arrays;
  }

  function packArrays(arrays) {
    const described = [];
    let total = 0;
    for (const a of arrays) total += a.values.byteLength;
    const payload = new Uint8Array(total);
    let offset = 0;
    for (const a of arrays) {
      described.push({ name: a.name, dtype: a.dtype, shape: a.shape });
      payload.set(new Uint8Array(a.values.buffer, a.values.byteOffset, a.values.byteLength), offset);
      offset += a.values.byteLength;
    }
    return [described, payload];
  }

  // ------------------------------------------------------------------ the model

  const SIGNATURE_DTYPES = { DT_FLOAT: 'float32', DT_INT32: 'int32', DT_BOOL: 'bool', DT_INT64: 'int32', DT_HALF: 'float32' };

  function dims(tensorShape) {
    return ((tensorShape && tensorShape.dim) || []).map((d) => parseInt(d.size, 10));
  }

  // The model's interface from its model.json signature: the names the converter gave
  // (input_0, output_0, ...) and the graph nodes TF.js feeds and fetches.
  function signatureSpecs(modelJson, model) {
    const signature = modelJson.signature || {};
    const side = (entries, fallback) => {
      const keys = Object.keys(entries || {}).sort();
      if (!keys.length) {
        return fallback.map((t) => ({ name: t.name, node: t.name, shape: (t.shape || []).map((d) => (d == null ? -1 : d)), dtype: NUMPY[t.dtype] || 'float32' }));
      }
      return keys.map((key) => ({
        name: key,
        node: entries[key].name.replace(/:0$/, ''),
        shape: dims(entries[key].tensorShape),
        dtype: NUMPY[SIGNATURE_DTYPES[entries[key].dtype]] || 'float32',
      }));
    };
    return { inputs: side(signature.inputs, model.inputs), outputs: side(signature.outputs, model.outputs) };
  }

  function spec(s) {
    return { name: s.name, shape: s.shape, dtype: s.dtype, scale: null, zero_point: null };
  }

  function firstLine(err) {
    const text = String((err && (err.message || err)) || 'unknown error').trim();
    return text.split('\n')[0];
  }

  // ------------------------------------------------------------------ the device

  // `platform` is what differs between Node.js and a browser:
  //   program          'node' | 'browser'
  //   tf, wasm         the @tensorflow/tfjs and tfjs-backend-wasm modules
  //   environment()    the `env` reply
  //   readModel(file)  -> {json, handler}: the model.json object and a tf.io handler or URL
  //   memory()         what the program knows of its memory, after a model loaded
  //   memoryBefore()   a reading taken just before loading
  //   threadsNote      why wasm threads are off, when the platform rules them out
  function Device(platform) {
    this.platform = platform;
    this.tf = platform.tf;
    this.model = null;
    this.feed = null;
    this.async = false;
  }

  Device.prototype.hello = async function () {
    return [{ protocol: PROTOCOL, program: this.platform.program, runtimes: ['tfjs'] }];
  };

  Device.prototype.env = async function () {
    return [{ env: await this.platform.environment() }];
  };

  // Start the TF.js backend asked for and say what was really chosen.
  Device.prototype.startBackend = async function (asked, threads) {
    const tf = this.tf;
    const wasm = this.platform.wasm;
    if (asked === 'wasm' && threads && wasm.setThreadsCount) wasm.setThreadsCount(threads);
    const warnings = [];
    const warn = console.warn;
    console.warn = function () {
      warnings.push(Array.prototype.map.call(arguments, String).join(' '));
    };
    let ok;
    try {
      ok = await tf.setBackend(asked);
    } finally {
      console.warn = warn;
    }
    if (!ok || tf.getBackend() !== asked) {
      const reason = warnings.filter((w) => !/^Initialization of backend/.test(w))[0] || 'no reason given';
      throw new Error('the TF.js ' + asked + ' backend failed to start: ' + reason.split('\n')[0]);
    }
    await tf.ready();
    const details = { backend: tf.getBackend(), tfjs: tf.version.tfjs };
    if (asked === 'wasm') {
      details.simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
      details.threads_supported = Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
      details.threads = wasm.getThreadsCount ? wasm.getThreadsCount() : 1;
      if (threads) details.threads_asked = threads;  // tfjs-backend-wasm may use fewer
      details.threads_on = details.threads_supported && details.threads > 1;
      if (!details.threads_supported && this.platform.threadsNote) details.threads_note = this.platform.threadsNote;
    }
    if (asked === 'webgl') {
      const gl = tf.backend().gpgpu && tf.backend().gpgpu.gl;
      const info = gl && gl.getExtension('WEBGL_debug_renderer_info');
      details.webgl_version = tf.env().getNumber('WEBGL_VERSION');
      details.renderer = gl ? (info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER)) : null;
      // SwiftShader is WebGL drawn by the CPU: what a browser without a GPU offers
      details.software_renderer = /SwiftShader|llvmpipe|Software/i.test(String(details.renderer));
    }
    return details;
  };

  Device.prototype.load = async function (header) {
    const tf = this.tf;
    const options = header.options || {};
    const asked = options.backend || 'wasm';
    const details = await this.startBackend(asked, header.threads);
    const before = this.platform.memoryBefore();
    const source = await this.platform.readModel(header.file);
    let model;
    try {
      model = await tf.loadGraphModel(source.handler, source.loadOptions);
    } catch (err) {
      throw new Error('TF.js cannot load ' + header.file + ': ' + firstLine(err));
    }
    if (this.model) this.model.dispose();
    this.model = model;
    this.specs = signatureSpecs(source.json, model);
    this.before = before;
    this.async = false;
    this.disposeFeed();
    return [{ runner: 'tfjs-' + details.backend, inputs: this.specs.inputs.map(spec), outputs: this.specs.outputs.map(spec), details: details }];
  };

  Device.prototype.disposeFeed = function () {
    if (this.feed) for (const t of Object.values(this.feed)) t.dispose();
    this.feed = null;
  };

  Device.prototype.loaded = function () {
    if (!this.model) throw new Error('no model loaded: send load first');
    return this.model;
  };

  // One inference of this.feed: the outputs' values, read back (dataSync) so the time
  // covers the whole computation, not just queuing it.
  Device.prototype.run = async function () {
    const model = this.loaded();
    const nodes = this.specs.outputs.map((s) => s.node);
    let result;
    if (!this.async) {
      try {
        result = model.execute(this.feed, nodes);
      } catch (err) {
        // graphs with control flow run only through executeAsync; switch once, for good
        if (!/executeAsync/.test(String(err && err.message))) throw err;
        this.async = true;
      }
    }
    if (this.async) result = await model.executeAsync(this.feed, nodes);
    const tensors = Array.isArray(result) ? result : [result];
    const values = tensors.map((t) => t.dataSync());
    const shapes = tensors.map((t) => t.shape);
    const dtypes = tensors.map((t) => t.dtype);
    for (const t of tensors) t.dispose();
    return this.specs.outputs.map((s, i) => ({ name: s.name, shape: shapes[i], dtype: NUMPY[dtypes[i]] || 'float32', values: values[i] }));
  };

  Device.prototype.infer = async function (header, payload) {
    const tf = this.tf;
    this.loaded();
    const arrays = unpackArrays(header.inputs, payload);
    const byName = {};
    for (const a of arrays) byName[a.name] = a;
    this.disposeFeed();
    const feed = {};
    for (const s of this.specs.inputs) {
      const a = byName[s.name];
      if (!a) throw new Error('input ' + s.name + ' is missing');
      const values = a.tfDtype === 'float32' && !(a.values instanceof Float32Array) ? Float32Array.from(a.values)
        : a.tfDtype === 'int32' && !(a.values instanceof Int32Array) ? Int32Array.from(a.values) : a.values;
      feed[s.node] = tf.tensor(values, a.shape, a.tfDtype);
    }
    this.feed = feed;
    const started = performance.now();
    const outputs = await this.run();
    const ms = performance.now() - started;
    const packed = packArrays(outputs);
    return [{ outputs: packed[0], ms: ms }, packed[1]];
  };

  // `runs` timings of the last infer's inputs after `warmup` untimed runs, on this engine's clock.
  Device.prototype.time = async function (header) {
    if (!this.feed) throw new Error('nothing to time: send infer first');
    for (let i = 0; i < (header.warmup || 0); i++) await this.run();
    const samples = [];
    for (let i = 0; i < header.runs; i++) {
      const started = performance.now();
      await this.run();
      samples.push(performance.now() - started);
    }
    return [{ samples_ms: samples, clock: 'performance.now' }];
  };

  Device.prototype.memory = async function () {
    const facts = this.platform.memory(this.before);
    facts.tfjs_tensor_bytes = this.tf.memory().numBytes;
    const backend = this.tf.backend();
    if (backend && backend.wasm && backend.wasm.HEAPU8) facts.wasm_heap_bytes = backend.wasm.HEAPU8.byteLength;
    return [{ memory: facts }];
  };

  // Answer one request: [reply header, reply payload]. A refused request is one line back.
  Device.prototype.handle = async function (header, payload) {
    const ops = { hello: 1, env: 1, load: 1, infer: 1, time: 1, memory: 1 };
    try {
      if (!ops[header.op]) throw new Error('unknown op ' + JSON.stringify(header.op));
      const reply = await this[header.op](header, payload);
      return [Object.assign({ ok: true }, reply[0]), reply[1] || new Uint8Array(0)];
    } catch (err) {
      return [{ ok: false, error: (err && err.name && err.name !== 'Error' ? err.name + ': ' : '') + firstLine(err) }, new Uint8Array(0)];
    }
  };

  return { PROTOCOL, encodeFrame, decodeFrame, packArrays, unpackArrays, signatureSpecs, Device, firstLine };
});
