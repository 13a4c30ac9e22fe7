// Queue dashboard: re-fetch the live fragment every few seconds (no library,
// no CDN). Updates hold while the operator is typing a search, has failed
// jobs selected or focuses a field in the live part, so nothing they are
// doing is replaced under them; "Pause updates" holds them by hand.
(function () {
  "use strict";
  const live = document.getElementById("live");
  const state = document.getElementById("refresh-state");
  const toggle = document.getElementById("refresh-toggle");
  const search = document.getElementById("dashboard-search");
  let typingUntil = 0;
  let pausedByHand = false;
  let busy = false;

  // Destructive forms ask first (data-confirm); works with or without the refresh.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    const message = form.dataset ? form.dataset.confirm : "";
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("[data-select-all]")) {
      document.querySelectorAll('input[name="ids"][type="checkbox"]').forEach(function (box) {
        box.checked = event.target.checked;
      });
    }
  });
  if (!live) {
    return;
  }

  function say(text) {
    if (state) {
      state.textContent = text;
    }
  }

  function holdReason() {
    if (pausedByHand) return "paused";
    if (document.hidden) return "tab hidden";
    if (search && (search.contains(document.activeElement) || Date.now() < typingUntil)) return "typing";
    if (live.querySelector('input[type="checkbox"]:checked')) return "jobs selected";
    const active = document.activeElement;
    if (active && live.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) return "editing";
    return "";
  }

  async function refresh() {
    const reason = holdReason();
    if (reason) {
      say("Updates held (" + reason + ")");
      return;
    }
    if (busy) return;
    busy = true;
    try {
      const response = await fetch(live.dataset.url, {
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" },
      });
      // A redirect means the session ended (login page): keep the last view.
      if (response.redirected || !response.ok) {
        say("Update failed (" + (response.redirected ? "signed out?" : response.status) + ")");
        return;
      }
      const html = await response.text();
      if (holdReason()) return; // the operator started something while we waited
      live.innerHTML = html;
      say("Updated " + new Date().toLocaleTimeString());
    } catch (error) {
      say("Update failed (" + error.message + ")");
    } finally {
      busy = false;
    }
  }

  if (search) {
    search.addEventListener("input", function () {
      typingUntil = Date.now() + 3000;
    });
  }
  if (toggle) {
    toggle.addEventListener("click", function () {
      pausedByHand = !pausedByHand;
      toggle.textContent = pausedByHand ? "Resume updates" : "Pause updates";
      say(pausedByHand ? "Updates paused" : "Updates resumed");
    });
  }
  window.setInterval(refresh, Number(live.dataset.interval) || 5000);
})();
