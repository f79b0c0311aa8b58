/* ConvoSuite chat: show an assistant reply while it is being written.
 *
 * A pending reply carries data-stream-url (server-sent events: "token" events with plain text, then one
 * "done" event with the final, server-rendered and sanitised HTML) and data-poll-url (the same message as
 * an HTML fragment). Tokens are inserted as text, never as HTML. If the event stream cannot be kept open,
 * the page falls back to polling the fragment.
 */
(function () {
  "use strict";

  var POLL_MS = 1000;
  var MAX_STREAM_ERRORS = 3;
  var polling = !window.EventSource;

  function scroller() { return document.getElementById("thread-scroll"); }

  function nearBottom(el) { return el && el.scrollHeight - el.scrollTop - el.clientHeight < 120; }

  function replaceMessage(el, html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    var fresh = template.content.firstElementChild;
    if (!fresh || !el.isConnected) return;
    var box = scroller();
    var stick = nearBottom(box);
    el.replaceWith(fresh);
    htmx.process(fresh);
    if (stick) box.scrollTop = box.scrollHeight;
  }

  function poll(el) {
    window.setTimeout(function () {
      if (el.isConnected) htmx.ajax("GET", el.dataset.pollUrl, { target: el, swap: "outerHTML" });
    }, POLL_MS);
  }

  function appendToken(el, text) {
    var body = el.querySelector("[data-streaming-body]");
    if (!body) {
      var bubble = el.querySelector(".message__bubble");
      var typing = bubble.querySelector(".typing");
      if (typing) typing.remove();
      body = document.createElement("div");
      body.className = "message__body message__body--streaming";
      body.setAttribute("data-streaming-body", "");
      bubble.appendChild(body);
      el.dataset.streaming = "true";
    }
    var box = scroller();
    var stick = nearBottom(box);
    body.textContent += text;
    if (stick) box.scrollTop = box.scrollHeight;
  }

  function follow(el) {
    if (el.dataset.streamFollowed) return;
    el.dataset.streamFollowed = "true";
    if (polling) { poll(el); return; }

    var source = new EventSource(el.dataset.streamUrl);
    var errors = 0;
    source.addEventListener("token", function (event) {
      errors = 0;
      appendToken(el, JSON.parse(event.data).text);
    });
    source.addEventListener("reset", function () {
      // The worker started the answer over (a retried task): forget what was shown so far.
      var body = el.querySelector("[data-streaming-body]");
      if (body) body.textContent = "";
    });
    source.addEventListener("done", function (event) {
      source.close();
      replaceMessage(el, JSON.parse(event.data).html);
    });
    source.addEventListener("timeout", function () {
      source.close();
      poll(el);
    });
    source.addEventListener("error", function () {
      // EventSource reconnects by itself (resuming after the last event); give up after a few failures.
      errors += 1;
      if (source.readyState === EventSource.CLOSED || errors >= MAX_STREAM_ERRORS) {
        source.close();
        polling = true;
        poll(el);
      }
    });
  }

  htmx.onLoad(function (root) {
    if (root.matches && root.matches("[data-stream-url]")) follow(root);
    if (root.querySelectorAll) root.querySelectorAll("[data-stream-url]").forEach(follow);
  });
})();
