/* ConvoSuite chat pages (home and conversation): the message box (Enter to send, Send/Stop while an answer
 * is written), message actions (copy, edit and resend), code copy buttons, search and keyboard shortcuts.
 * No inline script anywhere (Content-Security-Policy): everything hangs on ids and data-* attributes. */
(function () {
  "use strict";

  var form = document.getElementById("compose");
  var input = document.getElementById("message-input");
  var sendButton = document.getElementById("send-button");
  var stopButton = document.getElementById("stop-button");
  var errorBox = document.getElementById("compose-error");
  var scroller = document.getElementById("thread-scroll");
  var thread = document.getElementById("thread");
  var search = document.getElementById("conversation-search");
  var unavailable = input ? input.disabled : true;
  var stick = true;

  function toBottom() { if (scroller) scroller.scrollTop = scroller.scrollHeight; }
  function nearBottom() { return !scroller || scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120; }
  function grow() {
    if (!input) return;
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 240) + "px";
  }
  function showError(text) { if (errorBox) { errorBox.textContent = text; errorBox.hidden = false; } }
  function clearError() { if (errorBox) { errorBox.textContent = ""; errorBox.hidden = true; } }
  function typingInField(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  // --- an answer being written: Send gives way to Stop ---------------------------------------------------
  function pendingReply() { return thread ? thread.querySelector('.message[data-status="pending"]') : null; }

  function updateBusy() {
    var busy = !!pendingReply();
    document.body.classList.toggle("chat-is-busy", busy);
    if (sendButton) {
      sendButton.disabled = busy || unavailable;
      sendButton.hidden = busy;
    }
    if (stopButton) {
      stopButton.hidden = !busy;
      if (!busy) {
        stopButton.disabled = false;
        stopButton.querySelector("span").textContent = "Stop";
      }
    }
  }

  function stopAnswer() {
    var reply = pendingReply();
    if (!reply || !reply.dataset.stopUrl || (stopButton && stopButton.disabled)) return;
    if (stopButton) {
      stopButton.disabled = true;
      stopButton.querySelector("span").textContent = "Stopping…";
    }
    // The outcome (the answer as far as it got, marked Stopped) arrives on the answer's event stream.
    htmx.ajax("POST", reply.dataset.stopUrl, { source: reply, swap: "none" });
  }

  if (thread) new MutationObserver(updateBusy).observe(thread, {
    childList: true, subtree: true, attributes: true, attributeFilter: ["data-status"]
  });
  if (stopButton) stopButton.addEventListener("click", stopAnswer);

  // --- the message box ---------------------------------------------------------------------------------
  if (input) {
    input.addEventListener("keydown", function (e) {
      // Enter sends, Shift+Enter inserts a newline (IME composition is left alone).
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        if (input.value.trim() && !sendButton.disabled && !form.classList.contains("htmx-request")) form.requestSubmit();
      } else if (e.key === "ArrowUp" && !input.value && thread) {
        var mine = thread.querySelectorAll('.message[data-role="user"]');
        if (mine.length) { e.preventDefault(); openEdit(mine[mine.length - 1]); }
      }
    });
    input.addEventListener("input", grow);
    grow();
  }
  if (form) {
    form.addEventListener("reset", function () { setTimeout(grow, 0); });
    form.addEventListener("submit", function (e) {
      if (sendButton && sendButton.disabled) e.preventDefault();
      else if (!form.hasAttribute("hx-post") && input && !input.value.trim()) { e.preventDefault(); input.focus(); }
    });
  }

  document.body.addEventListener("htmx:beforeRequest", function (e) {
    if (e.detail.elt === form) { clearError(); sendButton.disabled = true; }
  });
  document.body.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.elt === form) updateBusy();
  });
  document.body.addEventListener("htmx:beforeSwap", function () { stick = nearBottom(); });
  document.body.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.target === thread) {
      var hint = document.getElementById("thread-empty");
      if (hint) hint.remove();
      if (e.detail.elt === form || stick) toBottom();
      clearError();
    } else if (stick) {
      toBottom();
    }
  });

  // htmx does not swap 4xx/5xx responses: show the server's message above the message box.
  function explain(xhr) {
    var body = (xhr.responseText || "").trim();
    if (xhr.status >= 400 && xhr.status < 500 && body && body.length < 600 && body.charAt(0) !== "<") return body;
    if (xhr.status === 429) return "You're sending messages too quickly. Please wait a moment and try again.";
    return "That didn't work. Please try again.";
  }
  document.body.addEventListener("htmx:responseError", function (e) {
    var elt = e.detail.elt;
    if (elt.classList && elt.classList.contains("message") && e.detail.requestConfig && e.detail.requestConfig.verb === "get") {
      var bubble = elt.querySelector(".message__bubble");
      elt.dataset.status = "failed";
      if (bubble) {
        bubble.innerHTML = '<div class="message__error"></div>';
        bubble.firstChild.textContent = "This reply couldn't be loaded. Reload the page to try again.";
      }
      return;
    }
    showError(explain(e.detail.xhr));
    if (elt === form) updateBusy();
  });
  document.body.addEventListener("htmx:sendError", function () {
    showError("Couldn't reach the server. Check your connection and try again.");
    updateBusy();
  });

  // --- copying -----------------------------------------------------------------------------------------
  function copyText(text, button) {
    var label = button.querySelector("span") || button;
    var original = label.textContent;
    function done() {
      label.textContent = "Copied";
      button.classList.add("is-copied");
      setTimeout(function () { label.textContent = original; button.classList.remove("is-copied"); }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { showError("Copying was refused by the browser."); });
    } else {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      if (document.execCommand("copy")) done();
      area.remove();
    }
  }

  function rawText(message) {
    var raw = message.querySelector("template.message__raw");
    return raw ? raw.content.textContent : "";
  }

  function copyLastAnswer() {
    if (!thread) return;
    var answers = thread.querySelectorAll('.message[data-role="assistant"]:not([data-status="pending"])');
    var last = answers[answers.length - 1];
    var button = last && last.querySelector("[data-copy-message]");
    if (button) copyText(rawText(last), button);
  }

  // --- edit and resend ---------------------------------------------------------------------------------
  function openEdit(message) {
    var editForm = message.querySelector(".message__edit");
    if (!editForm || document.body.classList.contains("chat-is-busy")) return;
    editForm.hidden = false;
    message.classList.add("is-editing");
    var toggle = message.querySelector("[data-edit-message]");
    if (toggle) toggle.setAttribute("aria-expanded", "true");
    var area = editForm.querySelector("textarea");
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
    message.scrollIntoView({ block: "nearest" });
  }

  function closeEdit(message) {
    var editForm = message.querySelector(".message__edit");
    if (!editForm) return;
    editForm.hidden = true;
    editForm.reset();
    message.classList.remove("is-editing");
    var toggle = message.querySelector("[data-edit-message]");
    if (toggle) { toggle.setAttribute("aria-expanded", "false"); toggle.focus(); }
  }

  document.addEventListener("keydown", function (e) {
    var editArea = e.target.closest && e.target.closest(".message__edit textarea");
    if (editArea && e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      editArea.form.requestSubmit();
    }
  });

  // --- clicks --------------------------------------------------------------------------------------------
  document.addEventListener("click", function (e) {
    var target = e.target.closest ? e.target : e.target.parentElement;
    var button;
    if ((button = target.closest("[data-copy-message]"))) {
      copyText(rawText(button.closest(".message")), button);
    } else if ((button = target.closest("[data-copy-code]"))) {
      var pre = button.closest(".code-block").querySelector("pre");
      copyText(pre ? pre.textContent.replace(/\n$/, "") : "", button);
    } else if ((button = target.closest("[data-edit-message]"))) {
      var message = button.closest(".message");
      if (message.querySelector(".message__edit").hidden) openEdit(message);
      else closeEdit(message);
    } else if ((button = target.closest("[data-cancel-edit]"))) {
      closeEdit(button.closest(".message"));
    } else if ((button = target.closest("[data-open-shortcuts]"))) {
      openShortcuts();
    } else if ((button = target.closest("[data-clear-search]")) && search) {
      e.preventDefault();
      search.value = "";
      htmx.trigger(search.form, "submit");
      search.focus();
    }
  });

  // --- keyboard shortcuts (the list: the "Shortcuts" dialog, templates/chat/_shortcuts_dialog.html) ------
  function openShortcuts() {
    var dialog = document.getElementById("shortcuts-dialog");
    if (dialog && !dialog.open) dialog.showModal();
  }

  document.addEventListener("keydown", function (e) {
    var mod = e.ctrlKey || e.metaKey;
    if (mod && e.shiftKey && (e.key === "O" || e.key === "o")) {
      e.preventDefault();
      window.location.assign(document.getElementById("new-conversation").href);
    } else if (mod && !e.shiftKey && (e.key === "k" || e.key === "K")) {
      e.preventDefault();
      if (search) { revealSidebar(); search.focus(); search.select(); }
    } else if (mod && e.shiftKey && e.code === "Semicolon") {
      e.preventDefault();
      copyLastAnswer();
    } else if (e.key === "Escape") {
      var editing = e.target.closest && e.target.closest(".message.is-editing");
      if (editing) { e.preventDefault(); closeEdit(editing); }
      else if (pendingReply() && !document.querySelector("dialog[open]")) { e.preventDefault(); stopAnswer(); }
    } else if (!mod && !e.altKey && !typingInField(e.target)) {
      if (e.key === "/" && search) { e.preventDefault(); revealSidebar(); search.focus(); }
      else if (e.key === "?") { e.preventDefault(); openShortcuts(); }
    }
  });

  function revealSidebar() {
    var toggle = document.querySelector("[data-sidebar-toggle]");
    var app = document.querySelector("[data-app]");
    if (toggle && app && toggle.offsetParent !== null && !app.classList.contains("is-sidebar-open")) toggle.click();
  }

  updateBusy();
  toBottom();
})();
