// kerascnn serve: the page. Plain JavaScript, no libraries; every number comes from the JSON API.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
};
const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const png = (b64) => "data:image/png;base64," + b64;
const pct = (p) => (100 * p).toFixed(1) + "%";

// ------------------------------------------------------------------ state (kept in the URL hash)
const DEFAULTS = { view: "inside", source: "draw", index: "", draw: "", models: "", layer: "", channel: "",
  method: "saliency", target: "", eps: "0.1", norm: "linf", attack: "fgsm", corruption: "", severity: "3",
  sigma: "0.25", kind: "class", cls: "", opacity: "0.85" };
const state = { ...DEFAULTS };
let MODELS = [];           // from GET /api/models
let last = {};             // the last answer per model, for Save JSON
let uploaded = null;       // an uploaded picture's data URL (not in the hash: too long)

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  for (const key of Object.keys(DEFAULTS)) state[key] = params.get(key) ?? DEFAULTS[key];
}
function writeHash() {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) if (v !== DEFAULTS[k] && v !== "") params.set(k, v);
  history.replaceState(null, "", "#" + params.toString());
}
const shown = () => {
  const names = state.models ? state.models.split(",") : MODELS.map((m) => m.name);
  const known = names.filter((n) => MODELS.some((m) => m.name === n));
  return known.length ? known : [MODELS[0].name];
};
const modelInfo = (name) => MODELS.find((m) => m.name === name);
const classes = () => modelInfo(shown()[0]).classes;

// ------------------------------------------------------------------ the API
async function api(path, body, method = "POST") {
  const options = { method, headers: { "Content-Type": "application/json" } };
  if (body !== undefined) options.body = JSON.stringify(body);
  const response = await fetch(path, options);
  let data;
  try { data = await response.json(); } catch { data = { error: `HTTP ${response.status}` }; }
  if (!response.ok && response.status !== 202) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}
function inputBody() {
  if (state.source === "test" && state.index !== "") return { index: Number(state.index) };
  if (state.source === "upload" && uploaded) return { image: uploaded };
  return { image: canvas.toDataURL("image/png") };
}
function toast(text) {
  const t = $("#toast"); t.textContent = text; t.hidden = false;
  clearTimeout(toast.timer); toast.timer = setTimeout(() => (t.hidden = true), 3500);
}

// ------------------------------------------------------------------ drawing
const canvas = $("#canvas");
const ctx = canvas.getContext("2d");
let erasing = false, drawing = false, lastPoint = null;
function clearCanvas() { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height); }
function point(e) {
  const r = canvas.getBoundingClientRect();
  return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
}
function stroke(to) {
  ctx.strokeStyle = erasing ? "#000" : "#fff"; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.lineWidth = Number($("#brush-size").value);
  ctx.beginPath(); ctx.moveTo(...(lastPoint || to)); ctx.lineTo(...to); ctx.stroke(); lastPoint = to;
}
canvas.addEventListener("pointerdown", (e) => { drawing = true; lastPoint = null; canvas.setPointerCapture(e.pointerId); stroke(point(e)); useDrawing(); });
canvas.addEventListener("pointermove", (e) => { if (drawing) { stroke(point(e)); useDrawing(); } });
canvas.addEventListener("pointerup", () => { drawing = false; saveDrawing(); refresh(); });
function useDrawing() { state.source = "draw"; state.index = ""; refreshSoon(); }
function saveDrawing() {  // the drawing at 28 x 28 in the hash, so that a link redraws it
  const small = el("canvas", { width: 28, height: 28 });
  const c = small.getContext("2d"); c.drawImage(canvas, 0, 0, 28, 28);
  const data = c.getImageData(0, 0, 28, 28).data;
  let bytes = ""; for (let i = 0; i < data.length; i += 4) bytes += String.fromCharCode(data[i]);
  state.draw = btoa(bytes).replace(/\+/g, "-").replace(/\//g, "_"); writeHash();
}
function loadDrawing() {
  clearCanvas();
  if (!state.draw) return;
  try {
    const bytes = atob(state.draw.replace(/-/g, "+").replace(/_/g, "/"));
    const small = el("canvas", { width: 28, height: 28 });
    const c = small.getContext("2d"); const img = c.createImageData(28, 28);
    for (let i = 0; i < 784; i++) { const v = bytes.charCodeAt(i) || 0; img.data.set([v, v, v, 255], 4 * i); }
    c.putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = true; ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
  } catch { clearCanvas(); }
}
$("#brush").onclick = () => { erasing = false; $("#brush").classList.add("on"); $("#eraser").classList.remove("on"); };
$("#eraser").onclick = () => { erasing = true; $("#eraser").classList.add("on"); $("#brush").classList.remove("on"); };
$("#clear").onclick = () => { clearCanvas(); state.draw = ""; useDrawing(); writeHash(); };

// ------------------------------------------------------------------ picking test images
// Each call draws only if no later call has started: a tab click (class 0) and a class pick (class 7) in quick
// succession otherwise race, and whichever answer lands last wins.
let thumbsAsked = 0;
async function loadThumbs() {
  const asked = ++thumbsAsked;
  const kind = state.kind, cls = state.cls || "0";
  $("#pick-kind").value = kind; $("#pick-class").value = cls; $("#pick-class").hidden = kind !== "class";
  const model = shown()[0];
  const query = new URLSearchParams({ model, kind, class: cls, limit: 48 });
  try {
    const list = await fetch("/api/images?" + query).then((r) => r.json());
    if (list.error) throw new Error(list.error);
    const pictures = await api("/api/thumbnails", { model, indices: list.images.map((i) => i.index) });
    if (asked !== thumbsAsked) return;
    $("#pick-count").textContent = `${list.count} ${kind === "class" ? "test images of class " + classes()[cls] : kind.replace("_", " ") + " test images"}` +
      (list.count > list.images.length ? ` (first ${list.images.length} shown)` : "") + ` · ${model}`;
    $("#thumbs").replaceChildren(...list.images.map((row) => el("figure", {
      class: String(row.index) === state.index ? "on" : "", title: `test image ${row.index}: label ${classes()[row.label]}, predicted ${classes()[row.predicted]} (${pct(row.confidence)})`,
      onclick: () => { state.source = "test"; state.index = String(row.index); writeHash(); markThumb(); refresh(); },
      "data-index": row.index },
    el("img", { src: png(pictures.images[row.index]), alt: `test image ${row.index}` }),
    el("figcaption", { class: row.label !== row.predicted ? "wrong" : "" }, `#${row.index}`))));
  } catch (e) { if (asked === thumbsAsked) $("#pick-count").textContent = e.message; }
}
function markThumb() { for (const f of $("#thumbs").children) f.classList.toggle("on", f.dataset.index === state.index); }
$("#pick-kind").onchange = (e) => { state.kind = e.target.value; writeHash(); loadThumbs(); };
$("#pick-class").onchange = (e) => { state.cls = e.target.value; writeHash(); loadThumbs(); };
$("#upload").onchange = (e) => {
  const file = e.target.files[0]; if (!file) return;
  const reader = new FileReader();
  reader.onload = () => { uploaded = reader.result; state.source = "upload"; state.index = ""; writeHash(); refresh(); };
  reader.readAsDataURL(file);
};
function showSource() {
  for (const b of $("#input-tabs").children) b.classList.toggle("on", b.dataset.source === state.source);
  for (const s of ["draw", "test", "upload"]) $("#source-" + s).hidden = s !== state.source;
}
for (const b of $("#input-tabs").children) b.onclick = () => {
  state.source = b.dataset.source; showSource(); writeHash();
  if (state.source === "test") loadThumbs();
  if (state.source !== "test" || state.index !== "") refresh();
};

// ------------------------------------------------------------------ shared pieces
function barsWithRows(probs, names, truth, top) {  // class probabilities; the top 10 where there are many classes
  const order = names.map((_, k) => k);
  const rows = names.length > 12 ? order.sort((a, b) => probs[b] - probs[a]).slice(0, 10) : order;
  return el("div", { class: "bars" }, rows.map((k) => {
    const tag = [k === top ? "top" : "", k === truth ? "truth" : ""].join(" ");
    return [el("div", { class: "name " + tag, title: names[k] }, names[k]),
      el("div", { class: "track " + tag }, el("div", { class: "fill", style: `width:${(100 * probs[k]).toFixed(2)}%` })),
      el("div", { class: "value " + tag }, pct(probs[k]))];
  }).flat());
}
function verdict(answer, names) {
  const p = answer.probabilities[answer.predicted];
  const truth = answer.label;
  const mark = truth === null || truth === undefined ? "" : truth === answer.predicted ? "right" : "wrong";
  return el("div", { class: "verdict" }, el("span", { class: mark }, names[answer.predicted]), " ",
    el("small", {}, `${pct(p)}` + (truth === null || truth === undefined ? "" : ` · true class ${names[truth]}`)));
}
function card(name, ...children) {
  const info = modelInfo(name);
  return el("div", { class: "card", "data-model": name }, el("h2", {}, name,
    el("small", {}, `${info.dataset} · ${info.test_accuracy === null ? "" : "test accuracy " + pct(info.test_accuracy)}`)), ...children);
}
function fig(src, caption, cls = "pixels") { return el("figure", {}, el("img", { src: png(src), class: cls, alt: caption }), el("figcaption", {}, caption)); }
function errorCard(name, e) { return card(name, el("div", { class: "error" }, e.message)); }

// ------------------------------------------------------------------ views
const VIEWS = {
  inside: { controls: () => [], async column(name) {
    const info = modelInfo(name);
    const layer = info.layers.some((l) => l.name === state.layer) ? state.layer : (info.layers[0] || {}).name;
    const a = await api("/api/activations", { ...inputBody(), model: name, layer });
    last[name] = a; showReceived(a);
    const chosen = a.layers.find((l) => l.name === layer);
    const strip = el("div", { class: "strip" }, el("figure", {}, el("img", { src: png(a.input), alt: "input" }), el("figcaption", {}, "input")),
      a.layers.map((l) => [el("span", { class: "arrow" }, "→"), el("figure", { class: l.name === layer ? "on" : "", title: `${l.name} ${l.shape.join("×")}`,
        onclick: () => { state.layer = l.name; state.channel = ""; writeHash(); refresh(); } },
      el("img", { src: png(l.mean), alt: l.name }), el("figcaption", {}, l.name, el("br"), l.shape.join("×")))]).flat(),
      el("span", { class: "arrow" }, "→"), el("figure", {}, el("div", { class: "verdict", style: "width:64px;height:64px;line-height:64px" }, info.classes[a.predicted]), el("figcaption", {}, "output")));
    const maps = chosen && chosen.maps ? el("div", {}, el("div", { class: "label", style: "margin-top:10px" },
      `${chosen.name}: ${chosen.shape[2]} maps of ${chosen.shape[0]}×${chosen.shape[1]} (scale 0 – ${chosen.scale.toPrecision(3)})` +
      (info.layers.find((l) => l.name === layer).conv ? " · click a map for its filter" : "")),
    el("div", { class: "maps" }, chosen.maps.map((m, c) => el("figure", { class: String(c) === state.channel ? "on" : "", title: `channel ${c}: max ${chosen.channel_max[c].toPrecision(3)}`,
      onclick: () => { state.channel = String(c); writeHash(); showKernel(name, layer, c); } },
    el("img", { src: png(m), alt: `channel ${c}` }), el("figcaption", {}, c))))) : null;
    return card(name, verdict(a, info.classes), barsWithRows(a.probabilities, info.classes, a.label, a.predicted), strip, maps);
  } },
  explain: { controls: () => [
    select("method", "method", [["saliency", "Saliency"], ["gradcam", "Grad-CAM"], ["smoothgrad", "SmoothGrad"], ["integrated_gradients", "Integrated gradients"], ["occlusion", "Occlusion"]]),
    select("target", "for class", [["", "the predicted one"], ...classes().map((c, k) => [String(k), c])]),
    slider("opacity", "overlay", 0, 1, 0.05, () => document.querySelectorAll("img.map").forEach((i) => (i.style.opacity = state.opacity)))],
  async column(name) {
    const info = modelInfo(name);
    const body = { ...inputBody(), model: name, method: state.method };
    if (state.target !== "") body.target = Number(state.target);
    const [e, p] = await Promise.all([api("/api/explain", body), api("/api/predict", { ...inputBody(), model: name })]);
    last[name] = { explain: e, predict: p }; showReceived(e);
    return card(name, verdict(p, info.classes),
      el("div", { class: "pair" },
        el("figure", {}, el("div", { class: "overlay" }, el("img", { src: png(e.input), alt: "input" }),
          el("img", { src: png(e.overlay), class: "map", style: `opacity:${state.opacity}`, alt: "map" })), el("figcaption", {}, `${METHOD_NAMES[e.method]} for class ${info.classes[e.target]}`)),
        el("figure", {}, el("img", { src: png(e.map), alt: "map alone", style: "width:196px;height:196px" }),
          el("figcaption", { class: "scale" }, `${e.signed ? "blue − / red +" : "0 → max"} · ${e.range[0].toPrecision(2)} … ${e.range[1].toPrecision(2)}`))),
      el("div", { style: "margin-top:10px" }, barsWithRows(p.probabilities, info.classes, p.label, p.predicted)));
  } },
  attack: { controls: () => [
    select("attack", "attack", [["fgsm", "FGSM (live)"], ["pgd", "PGD-40"], ["apgd", "APGD-CE"], ["minimal", "smallest perturbation"]]),
    select("norm", "norm", [["linf", "L∞"], ["l2", "L2"]]),
    state.attack === "minimal" ? null : slider("eps", "eps", 0, state.norm === "l2" ? 8 : 0.5, state.norm === "l2" ? 0.05 : 0.005, () => { if (state.attack === "fgsm") refreshSoon(false); }),
    select("target", "target", [["", "none (untargeted)"], ...classes().map((c, k) => [String(k), c])]),
    state.attack === "fgsm" ? null : el("button", { onclick: () => runJobs(false), id: "run" }, "Run"),
    ["pgd", "apgd"].includes(state.attack) ? el("button", { class: "secondary", onclick: () => runJobs(true), id: "run-curve", title: "the attack at 16 radii from 0 to the slider's end, one job step each" }, "Run along eps") : null,
    state.attack === "fgsm" ? null : el("button", { class: "secondary", onclick: cancelJobs, id: "cancel" }, "Cancel")],
  async column(name) {
    const info = modelInfo(name);
    if (state.attack !== "fgsm") return jobCard(name);
    const body = { ...inputBody(), model: name, attack: "fgsm", eps: Number(state.eps), norm: state.norm };
    if (state.target !== "") body.target = Number(state.target);
    const curveBody = { ...body, eps_max: state.norm === "l2" ? 8 : 0.5 };
    const [a, c] = await Promise.all([api("/api/attack", body), curveFor(name, curveBody)]);
    last[name] = { attack: a, curve: c }; showReceived(a);
    return attackCard(name, a, c);
  } },
  beyond: { controls: () => {
    const suite = modelInfo(shown()[0]).input_shape[0] === 28 ? CORRUPTIONS_MNIST : CORRUPTIONS_COMMON;
    if (!suite.includes(state.corruption)) state.corruption = suite[0];
    return [select("corruption", "corruption", suite.map((c) => [c, c.replace(/_/g, " ")])),
      slider("severity", "severity", 0, 5, 1, () => refreshSoon(false)),
      slider("sigma", "smoothing σ", 0.05, 1, 0.05, () => {}),
      el("button", { onclick: runCertify, id: "certify" }, "Certify")];
  }, async column(name) {
    const info = modelInfo(name);
    const r = await api("/api/corrupt", { ...inputBody(), model: name, corruption: state.corruption, severity: Number(state.severity) });
    last[name] = { corrupt: r }; showReceived(r);
    return card(name, verdict(r, info.classes), el("div", { class: "pair" }, fig(r.image, `${r.corruption.replace(/_/g, " ")}, severity ${r.severity}`)),
      el("div", { style: "margin-top:10px" }, barsWithRows(r.probabilities, info.classes, r.label, r.predicted)),
      el("div", { class: "certify", id: "certify-" + name }, el("div", { class: "hint" }, "Certify: randomized smoothing of this (uncorrupted) image at σ; 1,000 noisy samples.")));
  } },
};
const METHOD_NAMES = { saliency: "Saliency", gradcam: "Grad-CAM", smoothgrad: "SmoothGrad", integrated_gradients: "Integrated gradients", occlusion: "Occlusion" };
const CORRUPTIONS_MNIST = ["shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale", "rotate", "brightness", "translate", "stripe", "fog", "spatter", "dotted_line", "zigzag", "canny_edges"];
const CORRUPTIONS_COMMON = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression"];

function select(key, label, options) {
  const s = el("select", { id: "ctl-" + key, onchange: (e) => { state[key] = e.target.value; writeHash(); renderControls(); refresh(); } },
    options.map(([v, text]) => el("option", { value: v }, text)));
  s.value = state[key];
  return el("label", {}, label, s);
}
function slider(key, label, min, max, step, live) {
  const out = el("output", {}, state[key]);
  const input = el("input", { type: "range", id: "ctl-" + key, min, max, step, value: state[key],
    oninput: (e) => { state[key] = e.target.value; out.textContent = e.target.value; writeHash(); live(); },
    onchange: () => { if (key === "eps" || key === "severity") refresh(); } });
  return el("label", {}, label, input, out);
}

// ------------------------------------------------------------------ attacks
const curveCache = new Map();
async function curveFor(name, body) {  // the curve depends on the input, target and norm, not on eps
  const key = JSON.stringify({ ...body, eps: 0 });
  if (!curveCache.has(key)) { curveCache.clear(); curveCache.set(key, api("/api/curve", body)); }
  return curveCache.get(key);
}
function attackCard(name, a, c) {
  const info = modelInfo(name);
  const fooled = a.label !== null && a.label !== undefined ? a.predicted !== a.label : null;
  return card(name, verdict(a, info.classes),
    el("div", { class: "pair" }, fig(a.input, "original"), fig(a.adversarial, a.attack === "minimal" ? "smallest change" : `${a.attack.toUpperCase()} eps ${a.eps}`),
      fig(a.perturbation, "perturbation (amplified)")),
    el("div", { class: "stat" }, "L∞ ", el("b", {}, a.linf.toFixed(4)), " · L2 ", el("b", {}, a.l2.toFixed(3)),
      fooled === null ? "" : fooled ? " · fooled" : " · still right"),
    el("div", { style: "margin-top:8px" }, barsWithRows(a.probabilities, info.classes, a.label, a.predicted)),
    c ? curve(c, info.classes, Number(state.eps)) : null);
}
function curve(c, names, marker) {
  const W = 520, H = 150, L = 30, B = 20, top = c.eps[c.eps.length - 1];
  const x = (e) => L + (W - L - 6) * e / top, y = (p) => 6 + (H - B - 6) * (1 - p);
  const goal = c.goal, lines = [];
  const series = [[goal, c.targeted ? "#1f9d6b" : "#2f6fdf", (c.targeted ? "target " : "true ") + names[goal]]];
  const others = new Set(c.predicted.filter((k) => k !== goal));
  for (const k of [...others].slice(0, 2)) series.push([k, "#d64545", names[k]]);
  for (const [k, colour, label] of series) {
    const path = c.probabilities.map((row, i) => `${i ? "L" : "M"}${x(c.eps[i]).toFixed(1)},${y(row[k]).toFixed(1)}`).join("");
    lines.push(`<path d="${path}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    lines.push(`<text x="${W - 6}" y="${y(c.probabilities[c.probabilities.length - 1][k]) - 3}" text-anchor="end" fill="${colour}">${escape(label)}</text>`);
  }
  const svg = `<svg class="curve" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none">
    <line x1="${L}" y1="${y(0)}" x2="${W}" y2="${y(0)}" stroke="#e3e7ec"/><line x1="${L}" y1="${y(1)}" x2="${W}" y2="${y(1)}" stroke="#e3e7ec"/>
    <text x="${L - 4}" y="${y(1) + 4}" text-anchor="end">1</text><text x="${L - 4}" y="${y(0)}" text-anchor="end">0</text>
    <text x="${L}" y="${H - 4}">eps 0</text><text x="${W - 6}" y="${H - 4}" text-anchor="end">${top}</text>
    ${marker <= top ? `<line x1="${x(marker)}" y1="4" x2="${x(marker)}" y2="${y(0)}" stroke="#e39b1b" stroke-dasharray="3 3"/>` : ""}
    ${lines.join("")}</svg>`;
  const box = el("div", {}, el("div", { class: "label", style: "margin-top:10px" }, `probability along eps (${c.attack ? c.attack.toUpperCase() : "FGSM"})`));
  box.insertAdjacentHTML("beforeend", svg);
  return box;
}
const jobs = {};  // model -> job id
const jobKey = () => JSON.stringify([state.source, state.index, state.draw, uploaded && uploaded.length, state.attack, state.eps, state.norm, state.target]);
async function jobCard(name) {  // the last result of Run for this very input and these settings, else the plain prediction
  const answer = last[name] && last[name].job;
  if (answer && answer.result && answer.key === jobKey()) return attackCard(name, answer.result, null);
  const info = modelInfo(name);
  const p = await api("/api/predict", { ...inputBody(), model: name });
  showReceived(p);
  return card(name, verdict(p, info.classes), el("div", { id: "job-" + name }, el("div", { class: "hint" },
    `Press Run: ${state.attack === "minimal" ? "the smallest perturbation" : state.attack.toUpperCase()} runs as a job, with progress; Cancel stops it.`)),
  el("div", { style: "margin-top:8px" }, barsWithRows(p.probabilities, info.classes, p.label, p.predicted)));
}
async function runJobs(along) {
  for (const name of shown()) {
    const body = { ...inputBody(), model: name, attack: state.attack, eps: Number(state.eps), norm: state.norm };
    if (state.target !== "") body.target = Number(state.target);
    if (along) Object.assign(body, { curve: true, eps_max: state.norm === "l2" ? 8 : 0.5 });
    const key = jobKey();
    follow(name, api("/api/attack", body), (job) => {
      if (along) {
        const box = document.getElementById("job-" + name) || document.querySelector(`#columns > [data-model="${name}"]`);
        box.querySelectorAll(".progress, .stat, svg.curve, .along").forEach((n) => n.remove());
        const drawn = curve(job.result, modelInfo(name).classes, Number(state.eps)); drawn.classList.add("along"); box.append(drawn);
        return;
      }
      last[name] = { job: { ...job, key } }; render(name, attackCard(name, job.result, null));
    });
  }
}
async function runCertify() {
  for (const name of shown()) {
    const target = () => document.getElementById("certify-" + name);
    follow(name, api("/api/certify", { ...inputBody(), model: name, sigma: Number(state.sigma) }), (job) => {
      const r = job.result, names = modelInfo(name).classes;
      last[name] = { ...(last[name] || {}), certify: r };
      target() && target().replaceChildren(el("div", { class: "label", style: "margin-top:10px" }, "smoothed classifier"), el("div", { class: "verdict" }, r.abstain ? "abstains" : names[r.predicted],
        el("small", {}, r.abstain ? ` at σ ${r.sigma}` : ` certified within L2 radius ${r.radius.toFixed(3)} (σ ${r.sigma}, p ≥ ${r.p_lower.toFixed(3)})`)));
    }, () => target());
  }
}
async function follow(name, started, done, where) {
  const box = () => (where ? where() : document.getElementById("job-" + name)) || document.querySelector(`.card[data-model="${name}"]`);
  const bar = el("div", { class: "progress" }, el("div", { style: "width:0%" }));
  const note = el("div", { class: "stat" }, "starting…");
  box() && box().append(bar, note);
  try {
    let job = await started; jobs[name] = job.id;
    while (job.state === "queued" || job.state === "running") {
      bar.firstChild.style.width = (100 * job.progress) + "%";
      bar.classList.toggle("busy", job.steps === 1 && job.state === "running");
      note.textContent = `${job.kind}: ${job.state} · ${job.seconds.toFixed(1)} s`;
      await new Promise((r) => setTimeout(r, 150));
      job = await api("/api/jobs/" + job.id, undefined, "GET");
    }
    bar.classList.remove("busy"); bar.firstChild.style.width = "100%";
    if (job.state === "done") done(job);
    else note.textContent = `${job.kind}: ${job.state}${job.error ? " – " + job.error : ""}`;
  } catch (e) { note.textContent = e.message; note.className = "error"; }
}
async function cancelJobs() { for (const id of Object.values(jobs)) api("/api/jobs/" + id, undefined, "DELETE").catch(() => {}); }

// ------------------------------------------------------------------ kernel and feature picture
async function showKernel(name, layer, channel) {
  for (const f of document.querySelectorAll(`.card[data-model="${name}"] .maps figure`)) f.classList.toggle("on", f.textContent === String(channel));
  const info = modelInfo(name);
  if (!info.layers.find((l) => l.name === layer).conv) { $("#detail").replaceChildren(); return; }
  $("#detail").replaceChildren(el("div", { class: "stat busy-dot" }, `${name} · ${layer} filter ${channel}: computing its picture (once)`));
  try {
    const k = await api("/api/kernel", { model: name, layer, channel });
    $("#detail").replaceChildren(el("div", { class: "label" }, `${name} · ${layer} · filter ${channel}`),
      el("div", { class: "pair" }, fig(k.kernel, `kernel (input channels summed; blue − / red +)`),
        fig(k.feature, "what excites it most (gradient ascent)")));
  } catch (e) { $("#detail").replaceChildren(el("div", { class: "error" }, e.message)); }
}

// ------------------------------------------------------------------ rendering
function showReceived(answer) {
  if (answer.input) $("#received").src = png(answer.input);
  $("#input-note").textContent = answer.index !== null && answer.index !== undefined ? `test image ${answer.index}` +
    (answer.label !== null && answer.label !== undefined ? `, class ${classes()[answer.label]}` : "") : state.source === "draw" ? "your drawing, framed like MNIST" : "your picture";
}
function render(name, node) {
  const old = document.querySelector(`#columns > [data-model="${name}"]`);
  if (old) old.replaceWith(node); else $("#columns").append(node);
}
function renderControls() { $("#controls").replaceChildren(...VIEWS[state.view].controls().filter(Boolean)); }
let inFlight = false, pending = false, timer = null;
function refreshSoon(throttle = true) {  // while drawing or sliding: at most one request at a time, every 80 ms
  if (timer) return;
  timer = setTimeout(() => { timer = null; refresh(); }, throttle ? 80 : 30);
}
async function refresh() {
  if (inFlight) { pending = true; return; }
  inFlight = true; pending = false;
  const names = shown();
  for (const n of [...document.querySelectorAll("#columns > .card")]) if (!names.includes(n.dataset.model)) n.remove();
  try {
    await Promise.all(names.map(async (name) => {
      try { render(name, await VIEWS[state.view].column(name)); } catch (e) { render(name, errorCard(name, e)); }
    }));
    const order = names.map((n) => document.querySelector(`#columns > [data-model="${n}"]`)).filter(Boolean);
    $("#columns").append(...order);
    document.body.dataset.ready = String(Date.now());
  } finally {
    inFlight = false;
    if (pending) refresh();
  }
}
function setView(view) {
  state.view = view; writeHash(); last = {};
  for (const b of $("#views").children) b.classList.toggle("on", b.dataset.view === view);
  $("#detail").replaceChildren(); $("#columns").replaceChildren(); renderControls(); refresh();
}
for (const b of $("#views").children) b.onclick = () => setView(b.dataset.view);

// ------------------------------------------------------------------ keeping a view
function download(name, href) { const a = el("a", { href, download: name }); document.body.append(a); a.click(); a.remove(); }
$("#save-json").onclick = () => download(`kerascnn-${state.view}.json`, URL.createObjectURL(new Blob(
  [JSON.stringify({ state, link: location.href, answers: last }, null, 1)], { type: "application/json" })));
$("#save-png").onclick = async () => {  // every picture of the view, side by side, one row per model
  const rows = [...document.querySelectorAll("#columns > .card")].map((c) => [...c.querySelectorAll("img")]);
  const size = 140, pad = 10, cols = Math.max(1, ...rows.map((r) => r.length));
  const out = el("canvas", { width: pad + cols * (size + pad), height: pad + rows.length * (size + pad) });
  const g = out.getContext("2d"); g.fillStyle = "#fff"; g.fillRect(0, 0, out.width, out.height); g.imageSmoothingEnabled = false;
  rows.forEach((imgs, r) => imgs.forEach((img, c) => g.drawImage(img, pad + c * (size + pad), pad + r * (size + pad), size, size)));
  download(`kerascnn-${state.view}.png`, out.toDataURL("image/png"));
};
$("#copy-link").onclick = () => { navigator.clipboard && navigator.clipboard.writeText(location.href); toast("Link copied: it reopens this view"); };

// ------------------------------------------------------------------ start
async function start() {
  readHash();
  MODELS = (await api("/api/models", undefined, "GET")).models;
  const chips = $("#served");
  for (const m of MODELS) {
    chips.append(el("span", { class: "chip" + (shown().includes(m.name) ? " on" : ""), "data-model": m.name, title: `${m.input_shape.join("×")} · ${m.classes.length} classes`,
      onclick: (e) => {
        const now = new Set(shown()); if (now.has(m.name) && now.size > 1) now.delete(m.name); else now.add(m.name);
        state.models = MODELS.map((x) => x.name).filter((n) => now.has(n)).join(",");
        if (state.models === MODELS.map((x) => x.name).join(",")) state.models = "";
        for (const c of chips.children) c.classList.toggle("on", shown().includes(c.dataset.model));
        writeHash(); refresh();
      } }, m.name, el("small", {}, m.test_accuracy === null ? "" : pct(m.test_accuracy))));
  }
  $("#pick-class").replaceChildren(...classes().map((c, k) => el("option", { value: k }, c)));
  clearCanvas(); loadDrawing(); showSource();
  if (state.source === "test") loadThumbs();
  for (const b of $("#views").children) b.classList.toggle("on", b.dataset.view === state.view);
  renderControls(); refresh();
}
window.addEventListener("hashchange", () => { const before = JSON.stringify(state); readHash(); if (JSON.stringify(state) !== before) { loadDrawing(); showSource(); renderControls(); refresh(); } });
start().catch((e) => toast(e.message));
