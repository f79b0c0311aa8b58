/* ConvoSuite chat page: the composer (Enter to send, growing box, errors) and keeping the thread scrolled. */
(function () {
  var form = document.getElementById("compose");
  var input = document.getElementById("message-input");
  var errorBox = document.getElementById("compose-error");
  var scroller = document.getElementById("thread-scroll");
  var thread = document.getElementById("thread");
  var stick = true;

  function toBottom() { scroller.scrollTop = scroller.scrollHeight; }
  function nearBottom() { return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120; }
  function grow() { input.style.height = "auto"; input.style.height = Math.min(input.scrollHeight, 240) + "px"; }
  function showError(text) { errorBox.textContent = text; errorBox.hidden = false; }
  function clearError() { errorBox.textContent = ""; errorBox.hidden = true; }

  toBottom();

  // Enter sends, Shift+Enter inserts a newline (IME composition is left alone).
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      if (input.value.trim() && !form.classList.contains("htmx-request")) form.requestSubmit();
    }
  });
  input.addEventListener("input", grow);
  form.addEventListener("reset", function () { setTimeout(grow, 0); });

  document.body.addEventListener("htmx:beforeRequest", function (e) {
    if (e.detail.elt === form) clearError();
  });
  document.body.addEventListener("htmx:beforeSwap", function () { stick = nearBottom(); });
  document.body.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.target === thread) {
      var hint = document.getElementById("thread-empty");
      if (hint) hint.remove();
      toBottom();
    } else if (stick) {
      toBottom();
    }
  });

  // htmx does not swap 4xx/5xx responses: show the send endpoint's message above the form.
  document.body.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr;
    if (e.detail.elt === form) {
      var body = (xhr.responseText || "").trim();
      var isText = body && body.length < 600 && body.charAt(0) !== "<";
      if (xhr.status >= 400 && xhr.status < 500 && isText) showError(body);
      else if (xhr.status === 429) showError("You're sending messages too quickly. Please wait a moment and try again.");
      else showError("Your message couldn't be sent. Please try again.");
    } else if (e.detail.elt.classList && e.detail.elt.classList.contains("message")) {
      var bubble = e.detail.elt.querySelector(".message__bubble");
      e.detail.elt.dataset.status = "failed";
      if (bubble) {
        bubble.innerHTML = '<div class="message__error"></div>';
        bubble.firstChild.textContent = "This reply couldn't be loaded. Reload the page to try again.";
      }
    }
  });
  document.body.addEventListener("htmx:sendError", function (e) {
    if (e.detail.elt === form) showError("Couldn't reach the server. Check your connection and try again.");
  });
})();
