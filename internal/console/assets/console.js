// Slipway console: a small hand-written script (no library). The pages
// are rendered on the server and work without it; the script adds live
// updates over server-sent events, buttons without a page load, and the
// log viewer. See docs/console.md.
"use strict";
(function () {
  const csrf = document.body.dataset.csrf || "";
  const flash = document.getElementById("flash");
  const live = document.getElementById("live");

  function say(msg, err) {
    if (!flash) return;
    flash.textContent = msg;
    flash.className = err ? "err" : "";
  }

  // Buttons and forms marked data-action post with the CSRF token and
  // show the API's answer in the status line.
  document.addEventListener("submit", async function (e) {
    const f = e.target;
    if (!f.hasAttribute("data-action")) return;
    e.preventDefault();
    const b = e.submitter || f.querySelector("button");
    if (b) b.disabled = true;
    try {
      const r = await fetch(f.action, { method: "POST", body: new URLSearchParams(new FormData(f)),
        headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }, credentials: "same-origin" });
      const j = await r.json().catch(() => ({ message: r.statusText }));
      say(j.message || r.statusText, !r.ok);
    } catch (err) {
      say("request failed: " + err, true);
    } finally {
      if (b) b.disabled = false;
    }
  });

  document.addEventListener("input", function (e) {
    const t = e.target;
    if (t.dataset && t.dataset.out) {
      const o = document.getElementById(t.dataset.out);
      if (o) o.textContent = t.value;
    }
  });

  // patch replaces, moves, adds or removes one server-rendered fragment.
  function patch(p) {
    let el = document.getElementById(p.id);
    if (p.html === "") { if (el) el.remove(); return; }
    const tpl = document.createElement("template");
    tpl.innerHTML = p.html.trim();
    const fresh = tpl.content.firstElementChild;
    const section = p.section && document.getElementById(p.section);
    const focused = el && el.contains(document.activeElement) ? document.activeElement.getAttribute("data-verb") : null;
    if (el && (!section || el.parentElement === section)) {
      el.replaceWith(fresh);
    } else {
      if (el) el.remove();
      if (section) { p.first ? section.prepend(fresh) : section.append(fresh); }
    }
    if (focused) { // keep the keyboard where it was
      const b = fresh.querySelector('[data-verb="' + focused + '"]');
      if (b) b.focus();
    }
  }

  const stream = document.body.dataset.stream;
  if (stream) {
    const es = new EventSource(stream);
    es.addEventListener("open", () => { if (live) live.textContent = "Live."; });
    es.addEventListener("error", () => { if (live) live.textContent = "Reconnecting…"; });
    es.addEventListener("patch", (m) => { JSON.parse(m.data).forEach(patch); });
    es.addEventListener("reload", () => location.reload());
  }

  // The log viewer: follows a stream of lines, keeps at most
  // data-max-lines of them, pauses (buffering, within the same bound),
  // resumes where it left off after a network drop.
  const bar = document.getElementById("logbar");
  const pre = document.getElementById("log");
  if (bar && pre) {
    const max = parseInt(pre.dataset.maxLines || "5000", 10);
    const state = document.getElementById("log-state");
    const cont = document.getElementById("log-container");
    const prev = document.getElementById("log-previous");
    const pause = document.getElementById("log-pause");
    const follow = document.getElementById("log-follow");
    const dl = document.getElementById("log-download");
    let es = null, seen = 0, paused = false, held = [], retry = null;
    function params(from) {
      const q = new URLSearchParams();
      if (cont) q.set("container", cont.value);
      if (prev && prev.checked) q.set("previous", "true");
      if (from) q.set("from", String(from));
      return q.toString();
    }
    function add(lines) {
      const frag = document.createDocumentFragment();
      lines.forEach((l) => frag.append(document.createTextNode(l + "\n")));
      pre.append(frag);
      while (pre.childNodes.length > max) pre.firstChild.remove();
      if (!follow || follow.checked) pre.scrollTop = pre.scrollHeight;
    }
    function open(from) {
      if (es) es.close();
      if (dl) dl.href = dl.href.split("?")[0] + "?" + params(0);
      es = new EventSource(bar.dataset.logs + "?" + params(from));
      es.addEventListener("open", () => { state.textContent = paused ? "Paused." : "Following."; });
      es.addEventListener("line", (m) => {
        seen = Math.max(seen, parseInt(m.lastEventId || "0", 10));
        if (paused) { held.push(m.data); if (held.length > max) held.shift(); return; }
        add([m.data]);
      });
      es.addEventListener("end", (m) => { state.textContent = m.data || "The log ended."; es.close(); });
      es.addEventListener("failed", (m) => { state.textContent = m.data; es.close(); });
      es.addEventListener("error", () => {
        state.textContent = "Connection lost; reconnecting…";
        if (es.readyState === EventSource.CLOSED) {
          clearTimeout(retry);
          retry = setTimeout(() => open(seen), 1000);
        }
      });
    }
    function restart() { pre.textContent = ""; seen = 0; held = []; open(0); }
    if (cont) cont.addEventListener("change", restart);
    if (prev) prev.addEventListener("change", restart);
    if (pause) pause.addEventListener("click", () => {
      paused = !paused;
      pause.setAttribute("aria-pressed", String(paused));
      pause.textContent = paused ? "Resume" : "Pause";
      state.textContent = paused ? "Paused (new lines are kept)." : "Following.";
      if (!paused) { add(held); held = []; }
    });
    open(0);
  }
})();
