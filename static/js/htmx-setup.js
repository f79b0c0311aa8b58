/* htmx under a strict Content-Security-Policy (script-src 'self', style-src 'self', no 'unsafe-eval').
 * Runs after htmx.min.js and before htmx initialises on DOMContentLoaded (both are deferred, in order), so
 * these win over defaults; a page's <meta name="htmx-config"> may add other options (knowledge pages set
 * responseHandling) but none of ours sets these. */
(function () {
  "use strict";
  if (!window.htmx) return;
  // hx-on, hx-vars, "js:" hx-vals/hx-headers and trigger filters would need eval: refuse them outright.
  htmx.config.allowEval = false;
  // allowScriptTags stays on: swapped fragments carry data in <script type="application/json"> (json_script),
  // which htmx removes when it is off. An inline script in a fragment is still refused by the CSP.
  // htmx would inject a <style> element for .htmx-indicator; app.css carries those rules instead.
  htmx.config.includeIndicatorStyles = false;
  // While settling a swap, htmx copies "style" from an old element to its new twin with setAttribute, which
  // the CSP refuses (style-src-attr); classes and sizes are enough for our transitions.
  htmx.config.attributesToSettle = ["class", "width", "height"];
})();
