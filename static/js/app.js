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
    var dismiss = e.target.closest("[data-dismiss-notice]");
    if (dismiss) {
      // A one-off message ("Saved.", "Revoked."): gone on request, and focus stays on the page.
      var notice = dismiss.closest("[data-flash]");
      var stack = notice && notice.parentElement;
      if (notice) notice.remove();
      if (stack && !stack.children.length) stack.remove();
      var main = document.getElementById("main");
      if (main) { main.setAttribute("tabindex", "-1"); main.focus({ preventScroll: true }); }
      return;
    }
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

  // <form data-confirm="Question?">: asks before submitting (instead of an inline onsubmit, refused by the CSP).
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) e.preventDefault();
  });

  // <form data-reset-on-success data-clear="#id">: an htmx form emptied after a successful request, and the
  // element named by data-clear (an error box) cleared with it.
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.detail.elt;
    if (!e.detail.successful || !form.matches || !form.matches("form[data-reset-on-success]")) return;
    form.reset();
    var box = form.dataset.clear && document.querySelector(form.dataset.clear);
    if (box) box.textContent = "";
  });

  // Sizes and positions given as data-width / data-left (percent): set through the CSSOM, because the CSP
  // refuses style="" attributes in the markup.
  function applyGeometry(root) {
    if (!root.querySelectorAll) return;
    root.querySelectorAll("[data-width]").forEach(function (el) { el.style.width = el.dataset.width + "%"; });
    root.querySelectorAll("[data-left]").forEach(function (el) { el.style.left = el.dataset.left + "%"; });
  }
  if (window.htmx) htmx.onLoad(applyGeometry);
  else document.addEventListener("DOMContentLoaded", function () { applyGeometry(document); });
})();
