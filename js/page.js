// The browser page: edgekit.link/1 over fetch() to the server that served it.
// Each POST /link carries the reply to the last request and brings back the next one
// (204: none yet). The run's token comes from the URL; the first post claims the run
// and the server's session key goes with every later request.
(function () {
  'use strict';
  const link = window.EdgekitLink;
  const token = new URLSearchParams(location.search).get('token') || '';
  let session = null;
  const status = document.getElementById('status');

  function say(text, isError) {
    status.textContent = text;
    status.className = isError ? 'error' : '';
  }

  function headers(extra) {
    const h = Object.assign({ 'X-Edgekit-Token': token }, extra || {});
    if (session) h['X-Edgekit-Session'] = session;
    return h;
  }

  // Anything that escapes the request handlers reaches the host at once, as one line.
  let faulted = false;
  function fault(text) {
    if (faulted) return;
    faulted = true;
    say('Failed: ' + text, true);
    fetch('/fault', { method: 'POST', headers: headers(), body: text }).catch(() => {});
  }
  window.addEventListener('error', (e) => fault(e.message || 'script error'));
  window.addEventListener('unhandledrejection', (e) => fault(link.firstLine(e.reason)));

  function environment() {
    const n = navigator;
    return {
      user_agent: n.userAgent,
      hardware_concurrency: n.hardwareConcurrency || null,
      cores: n.hardwareConcurrency || null,
      cpu: null,
      machine: (n.userAgentData && n.userAgentData.platform) || n.platform || null,
      os: n.platform || null,
      memory_bytes: n.deviceMemory ? n.deviceMemory * 1024 * 1024 * 1024 : null,
      cross_origin_isolated: Boolean(self.crossOriginIsolated),
      secure_context: Boolean(self.isSecureContext),
      language: n.language,
      packages: { '@tensorflow/tfjs': tf.version.tfjs, '@tensorflow/tfjs-backend-wasm': tf.wasm && tf.wasm.version_wasm },
    };
  }

  tf.wasm.setWasmPaths('/wasm/');
  const device = new link.Device({
    program: 'browser',
    tf: tf,
    wasm: tf.wasm,
    environment: environment,
    // the model and its shards come from this page's server, for this run only
    readModel: async (file) => {
      const requestInit = { headers: headers() };
      const response = await fetch(file, requestInit);
      if (!response.ok) throw new Error('cannot fetch ' + file + ': HTTP ' + response.status);
      const json = await response.json();
      return { json: json, handler: file, loadOptions: { requestInit: requestInit } };
    },
    memoryBefore: () => null,
    memory: () => (performance.memory ? { js_heap_bytes: performance.memory.usedJSHeapSize } : {}),
    threadsNote: self.crossOriginIsolated ? null : 'the page is not cross-origin isolated (needs https or localhost), so no SharedArrayBuffer',
  });

  function row(label, value) {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td></td><td></td>';
    tr.children[0].textContent = label;
    tr.children[1].textContent = value;
    document.getElementById('result').appendChild(tr);
  }

  function fixed(x, digits) {
    return typeof x === 'number' ? x.toFixed(digits) : '–';
  }

  // The finished report, as the host sends it back.
  function show(report) {
    say('Done: ' + report.model.name + ' on ' + report.target.name);
    const lat = report.latency_ms || {};
    const env = report.env || {};
    const details = env.runner_details || {};
    row('latency p50 / p90 (ms)', fixed(lat.p50, 3) + ' / ' + fixed(lat.p90, 3));
    row('runs', String(lat.count));
    if (report.accuracy) row('top-1 (' + report.accuracy.dataset + ')', fixed(100 * report.accuracy.value, 2) + ' %');
    if (report.fidelity) row('max abs error vs ' + report.fidelity.reference, String(report.fidelity.max_abs_err));
    row('TF.js backend', String(details.backend) + (details.simd ? ', SIMD' : '') + (details.threads_on ? ', ' + details.threads + ' threads' : ', 1 thread'));
    row('browser', String(env.user_agent));
    row('hardware concurrency', String(env.hardware_concurrency));
  }

  const ops = {
    show: async (header) => {
      show(header.report);
      return [{ ok: true }, new Uint8Array(0)];
    },
  };

  async function serve() {
    let reply = new Uint8Array(0);
    for (;;) {
      const response = await fetch('/link', { method: 'POST', headers: headers(), body: reply });
      reply = new Uint8Array(0);
      if (response.headers.get('X-Edgekit-Session')) session = response.headers.get('X-Edgekit-Session');
      if (response.status === 204) continue;
      if (!response.ok) {
        const why = await response.json().catch(() => ({}));
        say('This run is not open to this page: ' + (why.error || 'HTTP ' + response.status), true);
        return;
      }
      const frame = link.decodeFrame(new Uint8Array(await response.arrayBuffer()));
      if (!frame) throw new Error('a request frame arrived cut short');
      const op = frame.header.op;
      if (op === 'bye') {
        await fetch('/link', { method: 'POST', headers: headers({ 'X-Edgekit-Last': '1' }), body: link.encodeFrame({ ok: true }) });
        if (!/^Done/.test(status.textContent)) say('Finished.');
        return;
      }
      if (op === 'load') say('Running the benchmark…');
      const answer = ops[op] ? await ops[op](frame.header, frame.payload) : await device.handle(frame.header, frame.payload);
      reply = link.encodeFrame(answer[0], answer[1]);
    }
  }

  if (!token) say('This page needs the link edgekit printed (it carries the run\'s token).', true);
  else serve().catch((err) => fault(link.firstLine(err)));
})();
