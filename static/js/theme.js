/* ConvoSuite theme: light or dark. Loaded in <head> without defer so data-theme is set before the first
 * paint. The person's choice (the toggle in the top bar) is kept in this browser; without one, the page
 * follows the system's prefers-color-scheme, live. The stylesheet only reads :root[data-theme="dark"]. */
(function () {
  "use strict";

  var KEY = "convosuite.theme";
  var root = document.documentElement;
  var systemDark = window.matchMedia("(prefers-color-scheme: dark)");

  function chosen() {
    try {
      var value = window.localStorage.getItem(KEY);
      return value === "dark" || value === "light" ? value : null;
    } catch (e) {
      return null; // storage disabled: follow the system
    }
  }

  function label() {
    var dark = root.getAttribute("data-theme") === "dark";
    var text = dark ? "Switch to light theme" : "Switch to dark theme";
    document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
      button.setAttribute("aria-label", text);
      button.setAttribute("title", text);
      button.setAttribute("aria-pressed", dark ? "true" : "false");
    });
  }

  function apply(theme) {
    root.setAttribute("data-theme", theme);
    label();
  }

  apply(chosen() || (systemDark.matches ? "dark" : "light"));

  systemDark.addEventListener("change", function (event) {
    if (!chosen()) apply(event.matches ? "dark" : "light");
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-theme-toggle]");
    if (!button) return;
    var next = root.getAttribute("data-theme") === "dark" ? "light" : "dark";
    try { window.localStorage.setItem(KEY, next); } catch (e) { /* not remembered; still switches */ }
    apply(next);
  });

  document.addEventListener("DOMContentLoaded", label);
})();
