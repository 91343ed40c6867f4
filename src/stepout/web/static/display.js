/* The room display: follows the room's Server-Sent Events and shows the current state.
   Text goes in with textContent only. Without JavaScript the page refreshes itself. */
(function () {
  "use strict";

  var root, zone, skew = 0, data = null, source = null, retry = 1000, lastQr = null;

  function field(name) { return root.querySelector('[data-field="' + name + '"]'); }
  function shown(name) { return root.querySelector('[data-show="' + name + '"]'); }
  function now() { return Date.now() + skew; }

  function clockText(iso) {
    var options = { hour: "numeric", minute: "2-digit" };
    try {
      return new Intl.DateTimeFormat(undefined, Object.assign({ timeZone: zone }, options))
        .format(new Date(iso));
    } catch (e) {
      return new Intl.DateTimeFormat(undefined, options).format(new Date(iso));
    }
  }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  // Calm words rather than a ticking clock: "less than a minute ago", "3 minutes ago".
  function elapsedText(ms) {
    var m = Math.max(0, Math.floor(ms / 60000));
    if (m < 1) { return "less than a minute ago"; }
    if (m < 60) { return plural(m, "minute") + " ago"; }
    var rest = m % 60;
    return plural(Math.floor(m / 60), "hour") + (rest ? " " + plural(rest, "minute") : "") + " ago";
  }

  function absolute(url) {
    if (!url) { return ""; }
    return /^https?:/.test(url) ? url : window.location.origin + url;
  }

  var ANNOUNCE = {
    idle: "Welcome.",
    in_session: "Your session is in progress.",
    away: "Your therapist has stepped out briefly."
  };

  function render(next) {
    var previous = data ? data.state : root.getAttribute("data-state");
    data = next;
    var state = next.state;
    root.className = "screen state-" + state;
    root.setAttribute("data-state", state);
    var panes = root.querySelectorAll(".pane");
    for (var i = 0; i < panes.length; i++) {
      panes[i].hidden = !panes[i].classList.contains("pane-" + state);
    }
    if (state === "away") {
      field("explanation").textContent = next.explanation || "";
      shown("explanation").hidden = !next.explanation;
      shown("expected_back").hidden = !next.expected_back;
      var help = next.help || {};
      ["call_button", "reception", "emergency"].forEach(function (key) {
        var item = field(key);
        item.textContent = help[key] || "";
        item.hidden = !help[key];
      });
    }
    var aside = root.querySelector(".concern");
    aside.hidden = !next.concern_url;
    field("concern_url").textContent = absolute(next.concern_url);
    if (next.concern_url && next.concern_url !== lastQr) {
      lastQr = next.concern_url;
      field("qr").src = root.getAttribute("data-qr") + "&v=" + encodeURIComponent(next.concern_url);
    }
    if (previous !== state) {
      document.getElementById("announce").textContent = ANNOUNCE[state] || "";
    }
    tick();
  }

  function tick() {
    if (!data || data.state !== "away") { return; }
    var left = Date.parse(data.left_at);
    field("elapsed").textContent = elapsedText(now() - left);
    var expected = field("expected_text");
    if (data.expected_back) {
      var back = Date.parse(data.expected_back);
      expected.textContent = back > now()
        ? "They expect to be back by about " + clockText(data.expected_back) + "."
        : "They should be back very soon.";
    }
  }

  function connect() {
    source = new EventSource(root.getAttribute("data-events"));
    function onData(event) {
      try { render(JSON.parse(event.data)); } catch (e) { /* not display JSON: ignore */ }
    }
    source.onmessage = onData;
    source.addEventListener("display", onData);
    source.onopen = function () {
      retry = 1000;
      field("link").hidden = true;
      root.setAttribute("data-connected", "true");
    };
    source.onerror = function () {
      field("link").hidden = false;
      root.setAttribute("data-connected", "false");
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (e.g. the server answered with an error): try again later.
        setTimeout(connect, retry);
        retry = Math.min(retry * 2, 30000);
      }
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    root = document.getElementById("display");
    zone = root.getAttribute("data-zone") || undefined;
    skew = Number(root.getAttribute("data-now")) - Date.now();
    lastQr = null;
    var first = JSON.parse(document.getElementById("display-data").textContent);
    if (first.concern_url) { lastQr = first.concern_url; }
    render(first);
    setInterval(tick, 1000);
    connect();
  });
})();
