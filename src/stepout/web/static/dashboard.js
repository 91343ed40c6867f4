/* The dashboard's charts: each one's Vega-Lite spec sits in the page as JSON
   (<script type="application/json">) and is drawn here with the vendored vega-embed.
   The pages' CSP forbids eval, so vega runs its expressions through the interpreter
   (ast: true) and no style element is injected (defaultStyle: false, the tooltip's too).
   Without this file every figure is still in the table after each chart. */
(function () {
  "use strict";

  function draw(el) {
    var source = document.getElementById(el.getAttribute("data-chart"));
    if (!source || typeof vegaEmbed !== "function") { return; }
    var spec = JSON.parse(source.textContent);
    vegaEmbed(el, spec, {
      ast: true,
      expr: vegaInterpreter.expressionInterpreter,
      actions: false,
      renderer: "svg",
      defaultStyle: false,
      tooltip: { disableDefaultStyle: true },
    }).then(function () {
      el.setAttribute("data-drawn", "true");
    }).catch(function (error) {
      el.setAttribute("data-drawn", "failed");
      el.textContent = "This chart could not be drawn; its figures are in the table below.";
      if (window.console) { window.console.warn(error); }
    });
  }

  function start() {
    var charts = document.querySelectorAll("[data-chart]");
    for (var i = 0; i < charts.length; i++) { draw(charts[i]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
