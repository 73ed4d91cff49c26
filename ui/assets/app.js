// mlpipe ui: live updates of server-rendered pages. Every value from the
// server is set with textContent or a class name, never as HTML.
"use strict";

(function () {
  var STATES = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "SKIPPED", "CACHED", "CANCELED", "INTERRUPTED"];

  function setState(el, state) {
    STATES.forEach(function (s) { el.classList.remove("state-" + s); });
    el.classList.add("state-" + state);
  }

  function fmtDuration(ms) {
    if (!ms) { return ""; }
    if (ms < 1000) { return ms + "ms"; }
    if (ms < 60000) { return (ms / 1000).toFixed(1) + "s"; }
    var s = Math.round(ms / 1000);
    return Math.floor(s / 60) + "m" + (s % 60) + "s";
  }

  // Run page: node states from the server-sent events.
  function runEvents(dag) {
    var byPath = {};
    document.querySelectorAll("[data-path]").forEach(function (el) {
      var p = el.getAttribute("data-path");
      (byPath[p] = byPath[p] || []).push(el);
    });
    var src = new EventSource(dag.getAttribute("data-events"));
    src.addEventListener("tasks", function (e) {
      JSON.parse(e.data).forEach(function (t) {
        (byPath[t.path] || []).forEach(function (el) {
          var sub = t.count > 1 ? "\u00d7" + t.count + " (" + t.done + " done) \u00b7 " : "";
          sub += t.reason ? t.reason.slice(0, 30) : (fmtDuration(t.duration_ms) || t.state.toLowerCase());
          if (el.tagName.toLowerCase() === "g") {
            setState(el, t.state);
            var title = el.querySelector("title");
            if (title) { title.textContent = t.path + ": " + t.state + (t.reason ? " \u2014 " + t.reason : ""); }
            var s = el.querySelector("text.sub");
            if (s) {
              s.textContent = sub;
              s.classList.toggle("reason", !!t.reason);
            }
          } else {
            var badge = el.querySelector(".badge");
            if (badge) { badge.textContent = t.state; setState(badge, t.state); }
            var c = el.querySelector(".count");
            if (c) { c.textContent = t.count > 1 ? t.done + "/" + t.count : ""; }
            var d = el.querySelector(".duration");
            if (d) { d.textContent = fmtDuration(t.duration_ms); }
            var r = el.querySelector(".reason");
            if (r) { r.textContent = t.reason || ""; }
          }
        });
      });
    });
    src.addEventListener("run", function (e) {
      var r = JSON.parse(e.data);
      var st = document.getElementById("run-state");
      if (st) { st.textContent = r.state; setState(st, r.state); }
      var du = document.getElementById("run-duration");
      if (du) { du.textContent = r.duration; }
    });
    src.addEventListener("end", function () {
      src.close();
      var f = document.getElementById("cancel-form");
      if (f) { f.remove(); }
      // The timeline drawn with the page stops where the run was: draw the
      // final one (server-rendered SVG, every name escaped by the server).
      var tl = document.getElementById("timeline");
      var id = document.getElementById("run-id");
      if (tl && tl.querySelector("svg") && id && window.fetch) {
        fetch("/runs/" + encodeURIComponent(id.textContent) + "/timeline.svg", { cache: "no-store" })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (svg) {
            if (svg) { tl.innerHTML = svg; }
            document.body.setAttribute("data-run-final", "true");
          });
      } else {
        document.body.setAttribute("data-run-final", "true");
      }
    });
    src.onerror = function () {
      if (src.readyState === EventSource.CLOSED) { return; }
    };
  }

  // Task page: the log's tail.
  function logTail(pre) {
    var src = new EventSource(pre.getAttribute("data-stream"));
    src.addEventListener("log", function (e) {
      var atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 20;
      pre.appendChild(document.createTextNode(JSON.parse(e.data)));
      if (atBottom) { window.scrollTo(0, document.body.scrollHeight); }
    });
    src.addEventListener("end", function () {
      src.close();
      pre.setAttribute("data-ended", "true");
    });
  }

  // Runs list: the first page, every 2 s.
  function runsPoll(table) {
    var url = table.getAttribute("data-live");
    function cell(text, cls) {
      var td = document.createElement("td");
      if (cls) { td.className = cls; }
      td.textContent = text;
      return td;
    }
    function refresh() {
      if (document.hidden) { return; }
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (l) {
        var checked = {};
        table.querySelectorAll("input.pick:checked").forEach(function (i) { checked[i.value] = true; });
        var body = table.querySelector("tbody");
        var rows = document.createDocumentFragment();
        l.runs.forEach(function (run) {
          var tr = document.createElement("tr");
          tr.setAttribute("data-run", run.run_id);
          var pick = document.createElement("input");
          pick.type = "checkbox"; pick.className = "pick"; pick.name = "runs"; pick.value = run.run_id;
          pick.checked = !!checked[run.run_id];
          var td0 = document.createElement("td"); td0.appendChild(pick); tr.appendChild(td0);
          var a = document.createElement("a"); a.href = run.url; a.textContent = run.run_id;
          var td1 = document.createElement("td"); td1.appendChild(a); tr.appendChild(td1);
          tr.appendChild(cell(run.pipeline));
          var badge = document.createElement("span"); badge.className = "badge"; badge.textContent = run.state; setState(badge, run.state);
          var td3 = document.createElement("td"); td3.appendChild(badge); tr.appendChild(td3);
          tr.appendChild(cell(run.started));
          tr.appendChild(cell(run.duration));
          tr.appendChild(cell(run.parameters, "params"));
          tr.appendChild(cell(run.executor));
          rows.appendChild(tr);
        });
        if (l.runs.length > 0) { body.replaceChildren(rows); }
      }).catch(function () {});
    }
    setInterval(refresh, 2000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var dag = document.getElementById("dag");
    if (dag && dag.getAttribute("data-events")) { runEvents(dag); }
    var log = document.getElementById("log");
    if (log && log.getAttribute("data-stream")) { logTail(log); }
    var runs = document.getElementById("runs");
    if (runs && runs.getAttribute("data-live")) { runsPoll(runs); }
    var gpus = document.getElementById("gpu-driver");
    if (gpus && gpus.getAttribute("data-live")) {
      setInterval(function () { if (!document.hidden) { window.location.reload(); } }, 5000);
    }
  });
})();
