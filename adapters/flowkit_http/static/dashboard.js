// flowkit dashboard: draws the observations of <base>/events (one JSON per SSE event).
// Rates come from two successive observations; nothing here keeps more than the
// last observation and a fixed-length history for the sparkline.
"use strict";
(function () {
  const feed = new URL("events", document.currentScript.src);
  const $ = (id) => document.getElementById(id);
  const HISTORY = 120;
  const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, Infinity];
  const history = [];
  let previous = null;

  const si = (v) => {
    if (v === null || !isFinite(v)) return "–";
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
    return a >= 10 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1);
  };
  const seconds = (s) => (s === null || !isFinite(s) ? "–" : s < 1 ? (s * 1000).toFixed(1) + " ms" : s.toFixed(2) + " s");
  const sum = (xs, f) => xs.reduce((a, x) => a + f(x), 0);
  const calls = (t) => sum(Object.values(t.calls), (n) => n);
  const cell = (text, cls) => {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    if (text instanceof Node) td.appendChild(text); else td.textContent = text;
    return td;
  };
  const row = (cells) => {
    const tr = document.createElement("tr");
    cells.forEach((c) => tr.appendChild(c));
    return tr;
  };
  const fillRows = (body, rows, empty, span) => {
    body.replaceChildren(...(rows.length ? rows : [row([cell(empty, "empty")])]));
    if (!rows.length) body.firstChild.firstChild.colSpan = span;
  };

  // p95 of the calls that ended since the previous observation, from the bucket deltas.
  function quantile(q, counts, before) {
    const delta = counts.map((n, i) => n - (before ? before[i] : 0));
    const total = delta.reduce((a, b) => a + b, 0);
    if (!total) return null;
    let seen = 0;
    for (let i = 0; i < delta.length; i++) {
      seen += delta[i];
      if (seen >= q * total) return BUCKETS[i] === Infinity ? BUCKETS[i - 1] : BUCKETS[i];
    }
    return null;
  }

  function histogram(pairs) {
    const box = document.createElement("span");
    box.className = "hist";
    const max = Math.max(1, ...pairs.map((p) => p[1]));
    const shown = pairs.slice(-24);
    shown.forEach(([size, count]) => {
      const bar = document.createElement("span");
      bar.style.height = Math.max(2, Math.round((24 * count) / max)) + "px";
      bar.title = size + " items × " + count;
      box.appendChild(bar);
    });
    if (!shown.length) box.textContent = "–";
    return box;
  }

  function fill(queued, bound) {
    const outer = document.createElement("span");
    outer.className = "fill";
    const bar = document.createElement("span");
    bar.className = "bar";
    const ratio = bound && isFinite(bound) ? Math.min(1, queued / bound) : 0;
    bar.style.width = Math.round(120 * ratio) + "px";
    outer.appendChild(bar);
    outer.title = queued + " / " + (bound === null ? "∞" : bound);
    return outer;
  }

  function spark() {
    const canvas = $("spark");
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (history.length < 2) return;
    const max = Math.max(1, ...history);
    ctx.strokeStyle = "#5aa9e6";
    ctx.lineWidth = 2;
    ctx.beginPath();
    history.forEach((v, i) => {
      const x = (i / (HISTORY - 1)) * canvas.width;
      const y = canvas.height - 4 - (v / max) * (canvas.height - 8);
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.stroke();
  }

  function draw(now) {
    const before = previous;
    const dt = before ? now.at - before.at : 0;
    const old = new Map(before ? before.tools.map((t) => [t.tool, t]) : []);
    const rate = (a, b) => (before && dt > 0 ? (a - b) / dt : null);
    const events = sum(now.tools, (t) => t.events_sent);
    const bytes = sum(now.tools, (t) => t.bytes_sent);
    const ended = sum(now.tools, calls);
    const eventsRate = before ? rate(events, sum(before.tools, (t) => t.events_sent)) : null;
    $("events-rate").textContent = si(eventsRate);
    $("bytes-rate").textContent = si(before ? rate(bytes, sum(before.tools, (t) => t.bytes_sent)) : null);
    $("calls-rate").textContent = si(before ? rate(ended, sum(before.tools, calls)) : null);
    $("calls-total").textContent = si(ended);
    $("active-calls").textContent = si(sum(now.tools, (t) => t.active));
    $("sessions").textContent = si(now.sessions);
    $("streams").textContent = si(now.streams);
    $("refusals").textContent = si(sum(Object.values(now.refusals), (n) => n));
    if (eventsRate !== null) {
      history.push(eventsRate);
      if (history.length > HISTORY) history.shift();
      spark();
    }

    fillRows($("tools"), now.tools.map((t) => {
      const p = old.get(t.tool);
      const n = calls(t), dn = p ? n - calls(p) : 0;
      const mean = p && dn > 0 ? (t.duration_sum - p.duration_sum) / dn : n ? t.duration_sum / n : null;
      return row([
        cell(t.tool), cell(si(t.active)), cell(si(p ? rate(n, calls(p)) : null)),
        cell(si(t.calls.ok)), cell(si(t.calls.error + t.calls.crashed), t.calls.error + t.calls.crashed ? "bad" : ""),
        cell(si(t.calls.cancelled)), cell(seconds(mean)),
        cell(seconds(quantile(0.95, t.duration_counts, p ? p.duration_counts : null))),
        cell(si(p ? rate(t.events_sent, p.events_sent) : null)),
        cell(si(t.logs_dropped)), cell(si(t.progress_conflated)), cell(fill(t.queued, t.max_queued), "l"),
      ]);
    }), "no tool calls yet", 12);

    const stages = [];
    now.tools.forEach((t) => t.stages.forEach((s) => stages.push(row([
      cell(t.tool), cell(s.name, "l"), cell(si(s.items_in)), cell(si(s.items_out)),
      cell(si(s.dropped), s.dropped ? "bad" : ""), cell(si(s.buffered)), cell(si(s.buffered_peak)),
      cell(s.send_blocked_seconds.toFixed(2)), cell(histogram(s.batch_sizes), "l"),
    ]))));
    fillRows($("stages"), stages, "no pipeline stages yet", 9);

    fillRows($("errors"), now.errors.slice().reverse().map((e) => row([
      cell((now.at - e.at).toFixed(1) + " s ago", "l"), cell(e.tool, "l"), cell(e.outcome, "l bad"), cell(e.kind, "l"),
    ])), "none", 4);
    $("clock").textContent = "updated " + new Date().toLocaleTimeString();
    previous = now;
  }

  function connect() {
    const source = new EventSource(feed);
    source.onopen = () => { $("status").textContent = "live"; $("status").className = "live"; };
    source.onmessage = (message) => draw(JSON.parse(message.data));
    source.onerror = () => { $("status").textContent = "reconnecting…"; $("status").className = "down"; };
  }
  connect();
})();
