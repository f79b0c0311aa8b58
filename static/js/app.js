/* ConvoSuite: small progressive enhancements shared by every page (no dependencies). */
(function () {
  "use strict";

  var MOBILE = window.matchMedia("(max-width: 768px)");

  function app() { return document.querySelector("[data-app]"); }

  function setSidebar(open) {
    var root = app();
    if (!root) return;
    root.classList.toggle("is-sidebar-open", open);
    document.querySelectorAll("[data-sidebar-toggle]").forEach(function (btn) {
      btn.setAttribute("aria-expanded", open ? "true" : "false");
      btn.setAttribute("aria-label", open ? "Hide conversations" : "Show conversations");
    });
    if (open) {
      var first = document.querySelector("#sidebar button, #sidebar a");
      if (first) first.focus();
    }
  }

  document.addEventListener("click", function (e) {
    if (e.target.closest("[data-sidebar-toggle]")) {
      var root = app();
      setSidebar(!(root && root.classList.contains("is-sidebar-open")));
    } else if (e.target.closest("[data-sidebar-close]")) {
      setSidebar(false);
    }
  });

  document.addEventListener("keydown", function (e) {
    var root = app();
    if (e.key === "Escape" && root && root.classList.contains("is-sidebar-open")) {
      setSidebar(false);
      var btn = document.querySelector("[data-sidebar-toggle]");
      if (btn) btn.focus();
    }
  });

  MOBILE.addEventListener("change", function (e) { if (!e.matches) setSidebar(false); });
})();
