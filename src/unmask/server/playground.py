"""The playground page served at ``/``: type a prompt, pick knobs, watch the canvas denoise.

It is a client of the public streaming API and nothing else: it posts to ``/v1/completions``
(or chat) with ``stream: true`` and the ``return_canvas`` extension, and draws every chunk's
canvas (masked cells grey, newly filled cells highlighted) beside the committed text. Kept as a
Python string so that it ships inside the package with no package-data configuration.
``__MODEL__``, ``__NEEDS_KEY__`` and ``__EXAMPLE__`` are filled in by the app.
"""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>unmask playground</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d232b; }
  header { background: #1d232b; color: #fff; padding: 10px 20px; }
  header b { font-size: 18px; } header span { opacity: .7; margin-left: 12px; }
  main { display: grid; grid-template-columns: 340px 1fr; gap: 20px; padding: 20px; }
  section { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 16px; }
  label { display: block; margin: 8px 0 2px; font-size: 13px; color: #555; }
  textarea, input, select { width: 100%; box-sizing: border-box; padding: 6px; font: inherit; }
  textarea { height: 110px; font-family: ui-monospace, monospace; }
  .row { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
  button { margin-top: 14px; width: 100%; padding: 10px; font-size: 16px; background: #2f6fed; color: #fff;
           border: 0; border-radius: 6px; cursor: pointer; } button:disabled { background: #8aa6dc; }
  #canvas { display: flex; flex-wrap: wrap; gap: 4px; min-height: 44px; }
  .cell { min-width: 34px; padding: 8px 6px; text-align: center; border-radius: 5px; font-family: ui-monospace, monospace;
          background: #e7f0e8; border: 1px solid #b9d3bc; white-space: pre; }
  .cell.masked { background: #c9ccd1; border-color: #aeb3ba; color: #6b7179; }
  .cell.fresh { background: #ffe27a; border-color: #e0b400; }
  .cell.prefix { background: #bfe3c3; }
  #stats { display: grid; grid-template-columns: repeat(4, 1fr); gap: 8px; margin: 14px 0; }
  .stat { background: #f1f3f6; border-radius: 6px; padding: 8px; } .stat b { display: block; font-size: 20px; }
  #text { font-family: ui-monospace, monospace; background: #f1f3f6; padding: 10px; border-radius: 6px; min-height: 24px;
          white-space: pre-wrap; }
  #history { font-family: ui-monospace, monospace; font-size: 12px; color: #555; max-height: 220px; overflow: auto; }
  #error { color: #b00020; white-space: pre-wrap; }
</style>
</head>
<body>
<header><b>unmask playground</b><span>model: <code id="model">__MODEL__</code></span></header>
<main>
<section>
  <label for="prompt">Prompt</label>
  <textarea id="prompt">__EXAMPLE__</textarea>
  <label><input type="checkbox" id="chat" style="width:auto"> send as a chat message</label>
  <div class="row">
    <div><label for="max_tokens">max_tokens</label><input id="max_tokens" type="number" min="1" placeholder="default"></div>
    <div><label for="steps">steps</label><input id="steps" type="number" min="1" placeholder="default"></div>
    <div><label for="block_length">block_length</label><input id="block_length" type="number" min="1" placeholder="default"></div>
    <div><label for="threshold">threshold</label><input id="threshold" type="number" step="0.05" min="0" max="1" placeholder="off"></div>
    <div><label for="temperature">temperature</label><input id="temperature" type="number" step="0.1" min="0" value="0"></div>
    <div><label for="seed">seed</label><input id="seed" type="number" value="0"></div>
  </div>
  <label for="stop">stop (optional)</label><input id="stop" placeholder="e.g. ANS">
  <div id="keybox" style="display:none"><label for="key">API key</label><input id="key" type="password"></div>
  <button id="run">Generate</button>
  <p id="error"></p>
</section>
<section>
  <div id="stats">
    <div class="stat">NFE<b id="nfe">0</b></div>
    <div class="stat">masked<b id="masked">-</b></div>
    <div class="stat">tokens/s<b id="tps">-</b></div>
    <div class="stat">status<b id="status">idle</b></div>
  </div>
  <label>Canvas (grey = still masked, yellow = filled by the last forward pass, green = committed prefix)</label>
  <div id="canvas"></div>
  <label>Streamed text (the committed left prefix: it only ever grows)</label>
  <div id="text"></div>
  <label>Steps</label>
  <div id="history"></div>
</section>
</main>
<script>
const NEEDS_KEY = __NEEDS_KEY__;
const $ = (id) => document.getElementById(id);
if (NEEDS_KEY) $("keybox").style.display = "block";

function knobs() {
  const body = {};
  for (const name of ["max_tokens", "steps", "block_length", "seed"]) {
    if ($(name).value !== "") body[name] = parseInt($(name).value, 10);
  }
  for (const name of ["threshold", "temperature"]) {
    if ($(name).value !== "") body[name] = parseFloat($(name).value);
  }
  if ($("stop").value !== "") body.stop = [$("stop").value];
  return body;
}

function draw(canvas, previous) {
  const box = $("canvas");
  box.innerHTML = "";
  let masked = 0;
  const prefix = canvas.findIndex((cell) => cell === null);  // the committed left prefix ends here
  canvas.forEach((cell, i) => {
    const div = document.createElement("div");
    div.className = "cell";
    if (cell === null) { div.classList.add("masked"); div.textContent = "\u2591"; masked += 1; }
    else {
      div.textContent = cell.trim() === "" ? "\u2423" : cell;
      if (previous && previous[i] === null) div.classList.add("fresh");
      else if (prefix === -1 || i < prefix) div.classList.add("prefix");
    }
    box.appendChild(div);
  });
  return masked;
}

async function run() {
  $("run").disabled = true; $("error").textContent = ""; $("text").textContent = ""; $("history").innerHTML = "";
  $("canvas").innerHTML = ""; $("status").textContent = "queued"; $("nfe").textContent = "0"; $("tps").textContent = "-";
  const chat = $("chat").checked;
  const body = Object.assign({ model: $("model").textContent, stream: true, return_canvas: true,
                               stream_options: { include_usage: true } }, knobs());
  if (chat) body.messages = [{ role: "user", content: $("prompt").value }]; else body.prompt = $("prompt").value;
  const headers = { "Content-Type": "application/json" };
  if (NEEDS_KEY) headers.Authorization = "Bearer " + $("key").value;
  const started = performance.now();
  let previous = null, frames = 0, maxMasked = 0, text = "", completion = 0;
  document.body.dataset.frames = "0";
  try {
    const response = await fetch(chat ? "/v1/chat/completions" : "/v1/completions", { method: "POST", headers, body: JSON.stringify(body) });
    if (!response.ok) { const e = await response.json(); throw new Error(e.error ? e.error.message : response.statusText); }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", done = false;
    $("status").textContent = "denoising";
    while (!done) {
      const part = await reader.read();
      if (part.done) break;
      buffer += decoder.decode(part.value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        const data = event.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
        if (data === "[DONE]") { done = true; break; }
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        if (chunk.usage) completion = chunk.usage.completion_tokens;
        const choice = chunk.choices[0];
        if (choice) {
          const delta = chat ? (choice.delta.content || "") : (choice.text || "");
          text += delta; $("text").textContent = text;
          if (choice.finish_reason) $("status").textContent = choice.finish_reason;
        }
        const ext = chunk.unmask;
        if (ext && ext.canvas) {
          const masked = draw(ext.canvas, previous);
          previous = ext.canvas; frames += 1; maxMasked = Math.max(maxMasked, masked);
          $("masked").textContent = masked; $("nfe").textContent = ext.nfe;
          const line = document.createElement("div");
          line.textContent = "step " + ext.nfe + ": " + ext.canvas.map((c) => (c === null ? "_" : c.trim() || "\u2423")).join(" ");
          $("history").appendChild(line);
          document.body.dataset.frames = String(frames);
          document.body.dataset.maxMasked = String(maxMasked);
        } else if (ext) { $("nfe").textContent = ext.nfe; }
      }
    }
    const seconds = (performance.now() - started) / 1000;
    if (completion) $("tps").textContent = (completion / seconds).toFixed(1);
    document.body.dataset.done = "1";
  } catch (err) {
    $("error").textContent = String(err.message || err); $("status").textContent = "error";
    document.body.dataset.done = "error";
  } finally { $("run").disabled = false; }
}
$("run").addEventListener("click", run);
</script>
</body>
</html>
"""
