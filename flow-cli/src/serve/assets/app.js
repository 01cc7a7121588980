// flow run viewer: live refresh. The runs list re-renders its rows from /api/runs; a run
// page reloads when /api/runs/{run} says the run changed. No other origin is contacted.
"use strict";
(function () {
  const body = document.body;
  const api = body.dataset.api;
  const live = document.getElementById("live");
  if (!api) return;
  const every = 2000;

  function cell(row, text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    if (text instanceof Node) td.appendChild(text); else td.textContent = text;
    row.appendChild(td);
  }

  function detail(run) {
    if (run.failure) return run.failure.reason;
    if (run.approval) return "waits for the approval of `" + run.approval.tool + "` call `" + run.approval.call_id + "` until " + run.approval.until;
    if (run.wait) return "waits for `" + run.wait.event + "` until " + run.wait.until;
    if (run.wake_at) return "wakes at " + run.wake_at;
    return run.corrupt || "";
  }

  function renderRuns(runs) {
    const tbody = document.querySelector("#runs tbody");
    if (!tbody) return;
    const rows = runs.map(function (run) {
      const tr = document.createElement("tr");
      tr.dataset.run = run.run_id;
      const a = document.createElement("a");
      a.href = "/runs/" + encodeURIComponent(run.run_id);
      a.textContent = run.run_id;
      cell(tr, a);
      cell(tr, run.workflow);
      const badge = document.createElement("span");
      badge.className = "state " + run.state;
      badge.textContent = run.state;
      cell(tr, badge);
      cell(tr, run.step);
      cell(tr, String(run.checkpoints), "num");
      const time = document.createElement("time");
      time.textContent = run.updated_at;
      cell(tr, time);
      cell(tr, detail(run), "detail");
      return tr;
    });
    tbody.replaceChildren.apply(tbody, rows);
    const empty = document.getElementById("empty");
    if (empty) empty.hidden = runs.length > 0;
  }

  function busy() {
    // Do not reload under someone typing a token or a reason.
    return Array.prototype.some.call(
      document.querySelectorAll("input[name=token], input[name=reason]"),
      function (input) { return input.value !== "" || document.activeElement === input; });
  }

  async function poll() {
    try {
      const res = await fetch(api, { headers: { Accept: "application/json" } });
      if (!res.ok) throw new Error(res.status);
      const data = await res.json();
      if (body.dataset.page === "runs") {
        renderRuns(data);
      } else if (body.dataset.page === "run") {
        if ((data.updated_at !== body.dataset.updated || data.state !== body.dataset.state) && !busy()) {
          location.reload();
          return;
        }
      }
      if (live) live.textContent = "live · " + new Date().toLocaleTimeString();
    } catch (e) {
      if (live) live.textContent = "not refreshing (" + e.message + ")";
    }
    setTimeout(poll, every);
  }
  setTimeout(poll, every);
})();
