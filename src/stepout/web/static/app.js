/* Stepout staff pages: the away timer, the copy button, focus after an htmx swap, and the
   therapist's live refresh.
   Everything works without this file; it only adds to the page. */
(function () {
  "use strict";

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function elapsedText(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + ":" + pad(m) : String(m)) + ":" + pad(s % 60);
  }

  var skew = null;
  function tick() {
    var timers = document.querySelectorAll("[data-left-at]");
    for (var i = 0; i < timers.length; i++) {
      var el = timers[i];
      if (skew === null) { skew = Number(el.getAttribute("data-now")) - Date.now(); }
      var value = el.querySelector(".timer-value");
      if (!value) { continue; }
      value.classList.remove("timer-static");
      value.textContent = elapsedText(Date.now() + skew - Number(el.getAttribute("data-left-at")));
    }
  }

  function setUpCopy(root) {
    var buttons = root.querySelectorAll("[data-copy]");
    for (var i = 0; i < buttons.length; i++) {
      var button = buttons[i];
      if (!navigator.clipboard || button.dataset.ready) { continue; }
      button.dataset.ready = "1";
      button.hidden = false;
      button.addEventListener("click", function (event) {
        var target = document.querySelector(event.currentTarget.getAttribute("data-copy"));
        var self = event.currentTarget;
        if (!target) { return; }
        navigator.clipboard.writeText(target.textContent.trim()).then(function () {
          self.textContent = "Copied";
        }, function () {
          self.textContent = "Select the text to copy it";
        });
      });
    }
  }

  // A therapist's screens follow changes made elsewhere (another device, the API): on each
  // "changed" event the page fetches itself again, unless the therapist is filling in a form.
  var editing = false;
  document.addEventListener("input", function (event) {
    if (event.target && event.target.closest && event.target.closest("form")) { editing = true; }
  });

  function refresh() {
    if (editing || !window.htmx) { return; }
    window.htmx.ajax("GET", window.location.href, {
      target: "#main", select: "#main", swap: "outerHTML", headers: { "X-Stepout-Refresh": "1" }
    });
  }

  // A refresh sent before the therapist started typing must not land on what they typed.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var config = event.detail.requestConfig;
    if (editing && config && config.headers && config.headers["X-Stepout-Refresh"]) {
      event.detail.shouldSwap = false;
    }
  });

  function follow(url) {
    if (!window.EventSource) { return; }
    var source = new EventSource(url);
    source.addEventListener("changed", refresh);
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    setUpCopy(document);
    var live = document.body.getAttribute("data-live");
    if (live) { follow(live); }
  });

  // After htmx replaces part of the page, keep keyboard users in place: focus the heading of
  // the part that changed when the button they used has gone.
  document.addEventListener("htmx:afterSettle", function () {
    var active = document.activeElement;
    if (!active || active === document.body) {
      var heading = document.getElementById("todo-h") || document.getElementById("concerns-h");
      if (heading) { heading.focus(); }
    }
    setUpCopy(document);
    tick();
  });
})();
