// The explorer page's behaviour, plain JavaScript with no library: details on hover, the
// backward stepper, module boxes that fold. Its data is the JSON of #graph-data (see
// tinygrad_cnn/viz/explore.py for the contract); the SVG's elements carry data-node,
// data-module and data-from/data-to.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("graph-data").textContent);
  const nodeById = new Map(data.nodes.map((n) => [n.id, n]));
  const modules = new Map((data.modules || []).map((m) => [m.id, m]));
  const folded = new Set(data.folded || []);
  const steps = data.steps || [];
  const maxLevel = Math.max(0, ...Array.from(modules.values()).map((m) => m.level));

  // one Graphviz layout per folding depth; `view` is the one on screen
  const views = Array.from(document.querySelectorAll("#graph .layout")).map((div) => {
    const view = { div, svg: div.querySelector("svg"), depth: Number(div.dataset.depth),
      nodes: new Map(), boxNodes: new Map(), boxes: new Map(), scale: 1, zoomed: false };
    view.svg.querySelectorAll("g[data-node]").forEach((g) => view.nodes.set(g.dataset.node, g));
    view.svg.querySelectorAll("g[data-box]").forEach((g) => view.boxNodes.set(g.dataset.box, g));
    view.svg.querySelectorAll("g[data-module]").forEach((g) => view.boxes.set(g.dataset.module, g));
    view.edges = Array.from(view.svg.querySelectorAll("g.edge[data-from]"));
    return view;
  });
  let view = views[views.length - 1];

  // the boxes around each node, outermost first (level 1, 2, ...)
  const boxesOf = new Map();
  Array.from(modules.values())
    .sort((a, b) => a.level - b.level)
    .forEach((m) => m.nodes.forEach((id) => {
      if (!boxesOf.has(id)) boxesOf.set(id, []);
      boxesOf.get(id).push(m.id);
    }));
  function ancestors(box) {  // outermost first, box itself last
    const chain = [];
    for (let b = box; b; b = modules.get(b).parent) chain.unshift(b);
    return chain;
  }

  // ---- small helpers ------------------------------------------------------------------
  function esc(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
      '"': "&quot;", "'": "&#39;" })[c]);
  }
  function words(text) {  // `name` -> <code>name</code>, after escaping
    return esc(text).replace(/`([^`]*)`/g, "<code>$1</code>");
  }
  function fmt(v) {
    if (typeof v === "string") return v;
    if (v === null || v === undefined) return "—";
    if (v === 0) return "0";
    const a = Math.abs(v);
    const text = a >= 1e5 || a < 1e-3 ? v.toExponential(3) : v.toFixed(4);
    return text.replace(/-/g, "−");
  }
  function shapeText(shape) {
    if (!shape) return "—";
    return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  }

  // ---- folding ------------------------------------------------------------------------
  // The view at depth d draws each box of level d + 1 as one node; a folded box of a lower
  // level is folded in place (its contents hidden, its frame kept). The page shows the
  // shallowest view whose every box of level d + 1 is folded.
  function pickView() {
    for (const v of views) {
      const level = v.depth + 1;
      const boxes = Array.from(modules.values()).filter((m) => m.level === level);
      if (v.depth >= maxLevel || boxes.every((m) => folded.has(m.id))) return v;
    }
    return views[views.length - 1];
  }
  function shownOfChain(chain) {  // the element standing for something inside these boxes
    for (let i = 0; i < chain.length; i++) {
      if (i < view.depth && folded.has(chain[i])) return view.boxes.get(chain[i]);
      if (i === view.depth) return view.boxNodes.get(chain[i]);
    }
    return null;
  }
  function shownElem(id) {  // what stands for node id on screen: it, or a box holding it
    return shownOfChain(boxesOf.get(id) || []) || view.nodes.get(id);
  }
  function shownEnd(end) {  // an edge's end: a node id or "box:<id>"
    return end.startsWith("box:") ? shownOfChain(ancestors(end.slice(4))) : shownElem(end);
  }
  function addFoldNote(box, g) {
    const frame = g.querySelector("path, polygon");
    if (!frame || g.querySelector("text.fold-note")) return;
    const r = frame.getBBox();
    const note = document.createElementNS("http://www.w3.org/2000/svg", "text");
    note.setAttribute("class", "fold-note");
    note.setAttribute("x", r.x + r.width / 2);
    note.setAttribute("y", r.y + r.height / 2 + 4);
    note.setAttribute("text-anchor", "middle");
    note.setAttribute("font-size", Math.max(10, Math.min(r.width / 16, r.height / 3, 24)));
    const count = modules.get(box).nodes.length;
    note.textContent = `▸ ${count} node${count === 1 ? "" : "s"} folded: click to open`;
    g.appendChild(note);
  }
  function applyFolds() {
    const next = pickView();
    if (next !== view) {
      view.div.classList.remove("active");
      view = next;
    }
    view.div.classList.add("active");
    view.nodes.forEach((g, id) => g.classList.toggle("hidden", shownElem(id) !== g));
    view.boxNodes.forEach((g, box) => g.classList.toggle("hidden", shownOfChain(ancestors(box)) !== g));
    view.boxes.forEach((g, box) => {
      const chain = ancestors(box);
      const hidden = chain.slice(0, -1).some((b) => folded.has(b));
      g.classList.toggle("hidden", hidden);
      g.classList.toggle("folded", folded.has(box));
      if (folded.has(box) && !hidden) addFoldNote(box, g);
      const note = g.querySelector("text.fold-note");
      if (note) note.classList.toggle("hidden", !folded.has(box));
    });
    view.edges.forEach((g) => {
      const a = shownEnd(g.dataset.from), b = shownEnd(g.dataset.to);
      g.classList.toggle("hidden", !a || !b || a === b);
    });
    if (!view.zoomed) autoZoom();
    render();
  }
  function toggle(box) {
    if (folded.has(box)) {
      folded.delete(box);
      // open one level: the boxes just inside it start folded
      modules.forEach((m) => { if (m.parent === box) folded.add(m.id); });
      // and fold the boxes of that level that no one sees (inside a folded box): the
      // screen changes only where clicked, in the most folded layout that can show it
      const level = modules.get(box).level;
      modules.forEach((m) => {
        const outer = ancestors(m.id).slice(0, -1);
        if (m.level === level + 1 && outer.some((b) => folded.has(b))) folded.add(m.id);
      });
    } else {
      folded.add(box);
    }
    applyFolds();
  }
  views.forEach((v) => {
    v.boxes.forEach((g, box) => {
      g.addEventListener("click", (event) => { event.stopPropagation(); toggle(box); });
      g.addEventListener("mouseenter", () => showBox(box));
      g.addEventListener("mouseleave", () => showDefault());
    });
    v.boxNodes.forEach((g, box) => {
      g.addEventListener("click", (event) => { event.stopPropagation(); toggle(box); });
      g.addEventListener("mouseenter", () => showBox(box));
      g.addEventListener("mouseleave", () => showDefault());
    });
  });

  // ---- the details panel --------------------------------------------------------------
  const details = document.getElementById("details");
  let pinned = null;

  function heatmapHtml(h, id) {
    return `<div class="heat" data-heat="${id}"></div>` +
      `<div class="heat-note">sample 0, channels 1–${h.channels} of ${h.of}` +
      `${h.h * h.w > 1 ? `, ${h.h}×${h.w} shown` : ""}; ${fmt(h.lo)} … ${fmt(h.hi)}</div>`;
  }
  function drawHeatmap(container, h) {
    const bytes = Uint8Array.from(atob(h.data), (c) => c.charCodeAt(0));
    const lo = typeof h.lo === "number" ? h.lo : 0, hi = typeof h.hi === "number" ? h.hi : 0;
    const signed = lo < 0 && hi > 0, big = Math.max(-lo, hi) || 1;
    for (let c = 0; c < h.channels; c++) {
      const canvas = document.createElement("canvas");
      canvas.width = h.w; canvas.height = h.h;
      const ctx = canvas.getContext("2d");
      const img = ctx.createImageData(h.w, h.h);
      for (let i = 0; i < h.w * h.h; i++) {
        const byte = bytes[c * h.w * h.h + i];
        let r, g, b;
        if (signed) {  // blue below zero, red above, white at zero
          const x = (lo + (byte / 255) * (hi - lo)) / big;
          const t = Math.min(1, Math.abs(x));
          [r, g, b] = x < 0 ? [255 * (1 - t), 255 * (1 - 0.6 * t), 255] :
            [255, 255 * (1 - 0.8 * t), 255 * (1 - 0.8 * t)];
        } else {  // white (low) to dark blue (high)
          const t = byte / 255;
          [r, g, b] = [255 - 225 * t, 255 - 197 * t, 255 - 117 * t];
        }
        img.data.set([r, g, b, 255], 4 * i);
      }
      ctx.putImageData(img, 0, 0);
      container.appendChild(canvas);
    }
  }
  function summaryHtml(s, id) {
    if (s === null || s === undefined) return "—";
    if (typeof s !== "object") return `<b>${fmt(s)}</b>`;
    let text = `min ${fmt(s.min)} · mean ${fmt(s.mean)} · max ${fmt(s.max)}<br>norm ${fmt(s.norm)}`;
    if (s.nonfinite) text += ` <b style="color:#dc2626">${s.nonfinite} nan/inf</b>`;
    if (s.heatmap) text += heatmapHtml(s.heatmap, id);
    return text;
  }
  function sourceHtml(src) {
    if (!src) return "";
    return ["forward", "backward"].map((m) =>
      `<div class="file">${esc(src.class)}.${m} — ${esc(src.file)}:${src[m].line}</div>` +
      `<pre>${esc(src[m].code)}</pre>`).join("");
  }
  function showNode(id) {
    const n = nodeById.get(id);
    if (!n) return;
    const rows = [
      ["op", n.op ? `<code>${esc(n.op)}</code>` : esc(n.kind)],
      ["shape", esc(shapeText(n.shape))],
      ["dtype", esc(n.dtype || "—")],
      ["value", summaryHtml(n.value, "value")],
      ["grad", summaryHtml(n.grad, "grad")],
      ["module", esc(n.module || "—")],
    ];
    details.innerHTML = `<h2>${esc(n.label.split("\n")[0])}</h2><table>` +
      rows.map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join("") + "</table>" +
      sourceHtml(n.source);
    for (const key of ["value", "grad"]) {
      const s = n[key], box = details.querySelector(`[data-heat="${key}"]`);
      if (s && s.heatmap && box) drawHeatmap(box, s.heatmap);
    }
  }
  function showBox(box) {
    const m = modules.get(box);
    const ops = m.nodes.filter((id) => (nodeById.get(id) || {}).kind === "op").length;
    details.innerHTML = `<h2>${esc(m.title)}</h2><p>${m.nodes.length} nodes, ${ops} ops. ` +
      `${folded.has(box) ? "Folded: click to open it." : "Click its box to fold it."}</p>`;
  }
  function showDefault() {
    if (pinned) showNode(pinned);
    else if (k > 0) showNode(steps[k - 1].node);
  }
  views.forEach((v) => v.nodes.forEach((g, id) => {
    g.addEventListener("mouseenter", () => showNode(id));
    g.addEventListener("mouseleave", () => showDefault());
    g.addEventListener("click", (event) => {
      event.stopPropagation();
      document.querySelectorAll("#graph .pinned").forEach((e) => e.classList.remove("pinned"));
      pinned = pinned === id ? null : id;
      views.forEach((w) => { if (pinned && w.nodes.has(id)) w.nodes.get(id).classList.add("pinned"); });
      showDefault();
    });
  }));

  // ---- the backward stepper -----------------------------------------------------------
  let k = 0;  // steps shown; steps[k - 1] is the current one
  let timer = null;
  const stepText = document.getElementById("step-text");
  const intro = stepText.innerHTML;
  const allMarked = () => view.svg.querySelectorAll(".current, .done, .flow");

  function render() {
    allMarked().forEach((g) => g.classList.remove("current", "done", "flow"));
    for (let i = 0; i < k - 1; i++) {
      const g = shownElem(steps[i].node);
      if (g) g.classList.add("done");
    }
    document.getElementById("step-count").textContent = `step ${k} / ${steps.length}`;
    if (k === 0) {
      stepText.innerHTML = intro;
      return;
    }
    const step = steps[k - 1];
    const g = shownElem(step.node);
    if (g) {
      g.classList.remove("done");
      g.classList.add("current");
    }
    const targets = new Set(step.sent.map((s) => s.to));
    view.edges.forEach((e) => {
      if (e.dataset.to === step.node && targets.has(e.dataset.from)) e.classList.add("flow");
    });
    stepText.innerHTML = `<b>step ${k} of ${steps.length}</b>: ${words(step.text)}` +
      (step.sent.length ? "<ul>" + step.sent.map((s) => `<li>${words(s.text)}</li>`).join("") +
        "</ul>" : "");
    if (!pinned) showNode(step.node);
    if (g && g.scrollIntoView) g.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
  function go(to) {
    k = Math.max(0, Math.min(steps.length, to));
    render();
  }
  function stop() {
    clearInterval(timer);
    timer = null;
    document.getElementById("step-play").classList.remove("playing");
    document.getElementById("step-play").textContent = "▶ play";
  }
  document.getElementById("step-next").addEventListener("click", () => go(k + 1));
  document.getElementById("step-prev").addEventListener("click", () => go(k - 1));
  document.getElementById("step-reset").addEventListener("click", () => { stop(); go(0); });
  document.getElementById("step-play").addEventListener("click", (event) => {
    if (timer) return stop();
    if (k >= steps.length) go(0);
    event.currentTarget.classList.add("playing");
    event.currentTarget.textContent = "⏸ pause";
    timer = setInterval(() => (k >= steps.length ? stop() : go(k + 1)), 900);
  });
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "ArrowRight") go(k + 1);
    else if (event.key === "ArrowLeft") go(k - 1);
    else if (event.key === "Home") { stop(); go(0); }
    else return;
    event.preventDefault();
  });

  // ---- zoom ---------------------------------------------------------------------------
  const pane = document.getElementById("graph");
  function zoom(to) {
    const svg = view.svg;
    if (!view.baseWidth) {
      view.baseWidth = svg.width.baseVal.value;
      view.baseHeight = svg.height.baseVal.value;
    }
    view.scale = Math.max(0.05, Math.min(4, to));
    view.zoomed = true;
    svg.setAttribute("width", view.baseWidth * view.scale);
    svg.setAttribute("height", view.baseHeight * view.scale);
  }
  function fit() {
    zoom(1);
    const sx = (pane.clientWidth - 16) / view.baseWidth;
    const sy = (pane.clientHeight - 16) / view.baseHeight;
    zoom(Math.min(1, sx, sy));
  }
  function autoZoom() {  // natural size, or narrower to fit the pane's width
    zoom(1);
    zoom(Math.max(0.4, Math.min(1, (pane.clientWidth - 16) / view.baseWidth)));
  }
  document.getElementById("zoom-in").addEventListener("click", () => zoom(view.scale * 1.25));
  document.getElementById("zoom-out").addEventListener("click", () => zoom(view.scale / 1.25));
  document.getElementById("zoom-fit").addEventListener("click", fit);

  applyFolds();
})();
