// Herald console: a little plain JavaScript on top of server-rendered
// pages. Every page works without it; with it, buttons answer in place and
// the release view updates live. Writes go to the JSON API with the
// session's CSRF token in the X-CSRF-Token header.
(function () {
  "use strict";

  var M = {};
  try { M = JSON.parse(document.body.getAttribute("data-i18n") || "{}"); } catch (e) { M = {}; }
  function t(key) {
    var s = M[key] || key, args = Array.prototype.slice.call(arguments, 1), i = 0;
    return s.replace(/%[sd]/g, function () { return i < args.length ? String(args[i++]) : ""; });
  }
  function label(prefix, v) { return M[prefix + v] || v; }

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  // api calls the JSON API; it resolves to {ok, status, data, error}.
  function api(method, path, body) {
    var opts = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (method !== "GET") {
      opts.headers["Content-Type"] = "application/json";
      opts.headers["X-CSRF-Token"] = csrf;
      opts.body = JSON.stringify(body || {});
    }
    return fetch(path, opts).then(function (resp) {
      var ct = resp.headers.get("Content-Type") || "";
      var parse = ct.indexOf("application/json") >= 0 ? resp.json() : resp.text();
      return parse.then(function (data) {
        var out = { ok: resp.ok, status: resp.status, data: data, error: "" };
        if (!resp.ok) {
          out.error = (data && data.error && data.error.message) || (typeof data === "string" && data) || resp.statusText;
          if (resp.status === 401) { window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); }
        }
        return out;
      });
    }, function () {
      return { ok: false, status: 0, data: null, error: t("js.network") };
    });
  }

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (attrs[k] === null || attrs[k] === undefined || attrs[k] === false) { return; }
        if (k === "text") { e.textContent = attrs[k]; } else { e.setAttribute(k, attrs[k]); }
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined || c === "") { return; }
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }
  function badge(status) { return el("span", { "class": "badge s-" + status, text: label("status.", status) }); }
  function fmtTime(iso) {
    if (!iso) { return ""; }
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return iso; }
    return d.toISOString().slice(0, 19).replace("T", " ");
  }
  function setStatus(node, msg, bad) {
    if (!node) { return; }
    node.textContent = msg;
    node.classList.toggle("bad", !!bad);
  }

  // ---- show/hide parts of a form by another control's value ----
  function controlValue(scope, name) {
    var nodes = scope.querySelectorAll('[name="' + name.replace(/"/g, '\\"') + '"]');
    for (var i = 0; i < nodes.length; i++) {
      var n = nodes[i];
      if (n.type === "checkbox" || n.type === "radio") {
        if (n.checked) { return n.value; }
        continue;
      }
      if (n.type !== "hidden") { return n.value; }
    }
    return "";
  }
  function applyShowWhen(root) {
    (root || document).querySelectorAll("[data-show-when]").forEach(function (part) {
      var spec = part.getAttribute("data-show-when"), eq = spec.indexOf("=");
      var name = spec.slice(0, eq), wanted = spec.slice(eq + 1).split("|");
      var scope = part.closest("form") || document;
      var show = wanted.indexOf(controlValue(scope, name)) >= 0;
      part.hidden = !show;
      // Hidden settings are not sent: what the user cannot see is not saved.
      part.querySelectorAll("input, select, textarea").forEach(function (c) { c.disabled = !show; });
    });
  }
  document.addEventListener("change", function (ev) {
    if (ev.target.form && ev.target.form.querySelector("[data-show-when]")) { applyShowWhen(ev.target.form); }
    if (ev.target.hasAttribute && ev.target.hasAttribute("data-autosubmit") && ev.target.form) {
      if (ev.target.form.requestSubmit) { ev.target.form.requestSubmit(); } else { ev.target.form.submit(); }
    }
  });

  // ---- forms: confirmation, and buttons answered in place ----
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var msg = form.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); return; }
    var kind = form.getAttribute("data-js");
    if (!kind || !window.fetch || !csrf) { return; }
    var handler = handlers[kind];
    if (!handler) { return; }
    ev.preventDefault();
    var btn = form.querySelector("button[type=submit]");
    if (btn) { btn.disabled = true; }
    Promise.resolve(handler(form)).then(function () { if (btn) { btn.disabled = false; } });
  });

  var handlers = {
    // The Test button: each channel's result shows under the configuration.
    test: function (form) {
      var target = document.getElementById(form.getAttribute("data-target"));
      if (target) { target.textContent = ""; target.appendChild(el("p", { "class": "js-status", text: t("js.sending") })); }
      return api("POST", "/api/v1/release/callbacks/" + encodeURIComponent(form.getAttribute("data-config")) + "/test", {}).then(function (r) {
        if (!target) { return; }
        target.textContent = "";
        if (!r.ok) { target.appendChild(el("p", { "class": "js-status bad", role: "alert", text: t("js.failed", r.error) })); return; }
        var results = (r.data && r.data.results) || [];
        var box = el("div", { "class": "results", role: "status" }, [el("h3", { text: t("js.results") })]);
        if (!results.length) { box.appendChild(el("p", { text: t("js.no_results") })); }
        var ul = el("ul");
        results.forEach(function (res) {
          ul.appendChild(el("li", { "class": "result r-" + res.status, "data-channel-type": res.channel_type }, [
            el("strong", { text: label("ch.type.", res.channel_type) }), badge(res.status),
            res.status_code ? el("span", { text: "HTTP " + res.status_code }) : null,
            el("span", { "class": "small", text: (res.duration_ms || 0) + " ms" }),
            res.error ? el("span", { "class": "errtext", text: res.error }) : null,
            res.history_id ? el("a", { "class": "small", href: "/history#" + encodeURIComponent(res.history_id), text: t("js.entry") }) : null
          ]));
        });
        box.appendChild(ul);
        target.appendChild(box);
      });
    },
    redeliver: function (form) {
      var status = form.querySelector(".js-status");
      setStatus(status, t("js.sending"));
      return api("POST", "/api/v1/release/callbacks/history/" + encodeURIComponent(form.getAttribute("data-entry")) + "/redeliver", {}).then(function (r) {
        if (r.ok) { setStatus(status, t("js.queued", r.data.delivery_id)); } else { setStatus(status, t("js.failed", r.error), true); }
      });
    },
    "task-action": function (form) {
      var live = document.getElementById("task-live");
      var id = live.getAttribute("data-task"), action = form.getAttribute("data-action");
      var status = document.querySelector("#task-actions .js-status");
      setStatus(status, t("js.working"));
      var call;
      if (action === "rollback") {
        var task = live._task || {};
        call = api("POST", "/api/v1/release/tasks", { project_id: task.project_id, environment: task.environment, type: "rollback", strategy: "rolling" });
      } else {
        call = api("POST", "/api/v1/release/tasks/" + encodeURIComponent(id) + "/" + action, {});
      }
      return call.then(function (r) {
        if (!r.ok) { setStatus(status, t("js.failed", r.error), true); return; }
        setStatus(status, "");
        if (action === "rollback") { window.location.href = "/tasks/" + encodeURIComponent(r.data.id); return; }
        taskView.update(r.data);
        taskView.poll();
      });
    }
  };

  // ---- copy a shown-once token ----
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest("[data-copy]");
    if (!b) { return; }
    var src = document.getElementById(b.getAttribute("data-copy"));
    if (src && navigator.clipboard) {
      navigator.clipboard.writeText(src.textContent).then(function () { b.textContent = t("js.copied"); });
    }
  });

  // ---- the live release view ----
  var taskView = (function () {
    var live = document.getElementById("task-live");
    if (!live) { return { update: function () {}, poll: function () {} }; }
    var id = live.getAttribute("data-task");
    var base = "/api/v1/release/tasks/" + encodeURIComponent(id);
    var timer = null, afterDone = 0, outputs = {};

    function active(s) { return s === "pending" || s === "running" || s === "paused"; }
    function set(key, value) {
      live.querySelectorAll('[data-k="' + key + '"]').forEach(function (n) { n.textContent = value; });
    }

    function hostRow(h) {
      var name = el("td", null, [h.name]);
      if (h.canary) { name.appendChild(document.createTextNode(" ")); name.appendChild(el("span", { "class": "tag", text: t("js.canary") })); }
      if (h.group) { name.appendChild(document.createTextNode(" ")); name.appendChild(el("span", { "class": "tag", text: h.group })); }
      var st = el("td", null, [badge(h.status)]);
      if (h.error) { st.appendChild(document.createTextNode(" ")); st.appendChild(el("span", { "class": "errtext", text: h.error })); }
      var open = outputs[h.name] && outputs[h.name].open;
      var link = el("a", { href: base + "/logs?host=" + encodeURIComponent(h.name), "data-log": h.name, "aria-expanded": open ? "true" : "false",
        text: open ? t("js.hide_output") : t("js.show_output") });
      return el("tr", { "data-host": h.name }, [name, el("td", null, [el("code", { text: h.address || "" })]), st,
        el("td", { text: (h.exit_code === null || h.exit_code === undefined) ? "" : String(h.exit_code) }),
        el("td", { text: fmtTime(h.started_at) }), el("td", { text: fmtTime(h.finished_at) }), el("td", null, [link])]);
    }
    function outputRow(name) {
      var o = outputs[name];
      return el("tr", { "class": "output-row", "data-output": name }, [el("td", { colspan: "7" }, [
        el("pre", { "class": "output", tabindex: "0", "aria-label": name, text: o.text === undefined ? t("js.loading") : (o.text || t("js.no_output")) })])]);
    }
    function head(keys) {
      return el("thead", null, [el("tr", null, keys.map(function (k) { return el("th", { scope: "col", text: t("js.th." + k) }); }))]);
    }
    function renderBatches(task) {
      var box = document.getElementById("batches");
      var hostHead = head(["host", "address", "status", "exit", "started", "finished", "output"]);
      var byName = {}, seen = {};
      (task.hosts || []).forEach(function (h) { byName[h.name] = h; });
      var groups = (task.batches || []).map(function (b) {
        var rows = (b.hosts || []).filter(function (n) { return byName[n]; }).map(function (n) { seen[n] = true; return byName[n]; });
        return { b: b, rows: rows };
      });
      var rest = (task.hosts || []).filter(function (h) { return !seen[h.name]; });
      if (rest.length) { groups.push({ b: null, rows: rest }); }
      var frag = document.createDocumentFragment();
      groups.forEach(function (g) {
        var title = g.b ? t("js.batch_n", g.b.number) : t("js.unplanned");
        var h3 = el("h3", null, [title + (g.b && g.b.phase ? " · " + label("phase.", g.b.phase) : "")]);
        if (g.b && g.b.status) { h3.appendChild(document.createTextNode(" ")); h3.appendChild(badge(g.b.status)); }
        var tbody = el("tbody");
        g.rows.forEach(function (h) {
          tbody.appendChild(hostRow(h));
          if (outputs[h.name] && outputs[h.name].open) { tbody.appendChild(outputRow(h.name)); }
        });
        frag.appendChild(el("section", { "class": "batch", "aria-label": title }, [h3, el("table", { "class": "list hosts" }, [hostHead.cloneNode(true), tbody])]));
      });
      if (!groups.length) { return; }
      box.textContent = "";
      box.appendChild(frag);
    }

    function renderDeliveries(items) {
      var box = document.getElementById("deliveries");
      if (!box) { return; }
      if (!items.length) {
        box.textContent = ""; box.appendChild(el("p", { "class": "empty", text: t("js.no_deliveries") }));
        return;
      }
      var tbody = el("tbody");
      items.forEach(function (e) {
        tbody.appendChild(el("tr", null, [el("td", { text: fmtTime(e.created_at) }), el("td", { text: label("event.", e.event_type) }),
          el("td", { text: label("ch.type.", e.channel_type) }), el("td", null, [badge(e.status)]), el("td", { text: String(e.attempt) }),
          el("td", { text: e.status_code ? String(e.status_code) : "" }), el("td", { "class": "errtext", text: e.error || "" })]));
      });
      var table = el("table", { "class": "list" }, [head(["time", "event", "channel", "status", "attempt", "http", "error"]), tbody]);
      box.textContent = "";
      box.appendChild(table);
    }

    function update(task) {
      live._task = task;
      var s = live.querySelector('[data-k="status"]');
      s.textContent = ""; s.appendChild(badge(task.status));
      set("phase", task.phase ? label("phase.", task.phase) : "—");
      var c = task.counts || {};
      set("completed", c.completed || 0); set("total", c.total || 0); set("canary", c.canary || 0); set("failed", c.failed || 0);
      set("started_at", fmtTime(task.started_at) || "—");
      set("finished_at", fmtTime(task.finished_at) || "—");
      set("duration", task.duration || "—");
      set("auto_promote_at", fmtTime(task.auto_promote_at) || "—");
      var err = live.querySelector('[data-k="error"]');
      if (err) { err.textContent = task.error || ""; err.hidden = !task.error; }
      var rb = live.querySelector('[data-k="rollback_task"]');
      if (rb && task.rollback_task_id) {
        var a = rb.querySelector("a"); a.href = "/tasks/" + encodeURIComponent(task.rollback_task_id);
        a.textContent = ""; a.appendChild(el("code", { text: task.rollback_task_id })); rb.hidden = false;
      }
      live.querySelectorAll("[data-when]").forEach(function (f) {
        f.hidden = f.getAttribute("data-when").split(" ").indexOf(task.status) < 0;
      });
      set("live", active(task.status) ? t("js.live") : "");
      renderBatches(task);
    }

    function hostDone(task, name) {
      var h = ((task && task.hosts) || []).filter(function (x) { return x.name === name; })[0];
      return !!h && h.status !== "running" && h.status !== "pending";
    }
    // Open outputs follow their host until it has finished.
    function refreshOutputs(task) {
      Object.keys(outputs).forEach(function (name) {
        var o = outputs[name];
        if (o.open && !o.final) { loadOutput(name, hostDone(task, name)); }
      });
    }
    function loadOutput(name, final) {
      return api("GET", base + "/logs?host=" + encodeURIComponent(name)).then(function (r) {
        var o = outputs[name];
        if (!o) { return; }
        o.text = r.ok ? r.data : t("js.failed", r.error);
        o.final = final;
        var pre = live.querySelector('tr[data-output="' + CSS.escape(name) + '"] pre');
        if (pre) { pre.textContent = o.text || t("js.no_output"); }
      });
    }
    live.addEventListener("click", function (ev) {
      var a = ev.target.closest("a[data-log]");
      if (!a) { return; }
      ev.preventDefault();
      var name = a.getAttribute("data-log");
      var o = outputs[name] || (outputs[name] = {});
      o.open = !o.open;
      a.setAttribute("aria-expanded", o.open ? "true" : "false");
      a.textContent = o.open ? t("js.hide_output") : t("js.show_output");
      var row = a.closest("tr"), next = row.nextElementSibling;
      if (next && next.classList.contains("output-row")) { next.remove(); }
      if (o.open) {
        row.parentNode.insertBefore(outputRow(name), row.nextSibling);
        loadOutput(name, hostDone(live._task, name));
      }
    });

    function tick() {
      timer = null;
      if (document.hidden) { schedule(3000); return; }
      Promise.all([api("GET", base), api("GET", base + "/callbacks?limit=100")]).then(function (rs) {
        var tr = rs[0], dr = rs[1];
        if (dr.ok && dr.data) { renderDeliveries(dr.data.items || []); }
        if (!tr.ok) { schedule(5000); return; }
        update(tr.data);
        refreshOutputs(tr.data);
        if (active(tr.data.status)) { afterDone = 0; schedule(1500); return; }
        // Notifications of the last steps arrive just after the end.
        if (afterDone++ < 15) { schedule(2000); }
      });
    }
    function schedule(ms) { if (!timer) { timer = setTimeout(tick, ms); } }
    function poll() { if (timer) { clearTimeout(timer); timer = null; } afterDone = 0; tick(); }

    api("GET", base).then(function (r) { if (r.ok) { live._task = r.data; } });
    if (live.getAttribute("data-live") === "true") { schedule(1000); } else { schedule(2000); }
    return { update: update, poll: poll };
  })();

  // ---- errors: focus the summary; link each entry to its input ----
  document.querySelectorAll("[data-errsum] a[data-field]").forEach(function (a) {
    var path = a.getAttribute("data-field");
    while (path && !document.getElementById("f-" + path)) {
      var cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
      path = cut > 0 ? path.slice(0, cut) : "";
    }
    if (path) { a.setAttribute("href", "#f-" + path); }
    a.addEventListener("click", function (ev) {
      var target = document.getElementById(a.getAttribute("href").slice(1));
      if (target) { ev.preventDefault(); target.focus(); }
    });
  });
  var sum = document.querySelector("[data-errsum]");
  if (sum) { sum.focus(); }

  applyShowWhen(document);
})();
