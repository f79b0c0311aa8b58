/* ConvoSuite chat: show an assistant reply while it is being written.
 *
 * A pending reply carries data-stream-url (server-sent events: "render" events with the answer so far,
 * rendered and sanitised on the server exactly like a finished answer, then one "done" event with the
 * final message's HTML) and data-poll-url (the same message as an HTML fragment). If the event stream
 * cannot be kept open, the page falls back to polling the fragment. ("token" events carry the raw text
 * pieces for other readers; the page does not need them.)
 */
(function () {
  "use strict";

  var POLL_MS = 1000;
  var MAX_STREAM_ERRORS = 3;
  var polling = !window.EventSource;

  function scroller() { return document.getElementById("thread-scroll"); }

  function nearBottom(el) { return el && el.scrollHeight - el.scrollTop - el.clientHeight < 120; }

  function enhance(root) { if (window.ConvoSuiteMarkdown) window.ConvoSuiteMarkdown.enhance(root); }

  function replaceMessage(el, html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    var fresh = template.content.firstElementChild;
    if (!fresh || !el.isConnected) return;
    var box = scroller();
    var stick = nearBottom(box);
    el.replaceWith(fresh);
    htmx.process(fresh);
    enhance(fresh);
    if (stick) box.scrollTop = box.scrollHeight;
  }

  function poll(el) {
    window.setTimeout(function () {
      if (el.isConnected) htmx.ajax("GET", el.dataset.pollUrl, { target: el, swap: "outerHTML" });
    }, POLL_MS);
  }

  function streamingBody(el) {
    var body = el.querySelector("[data-streaming-body]");
    if (!body) {
      var bubble = el.querySelector(".message__bubble");
      var typing = bubble.querySelector(".typing");
      if (typing) typing.remove();
      body = document.createElement("div");
      body.className = "message__body markdown message__body--streaming";
      body.setAttribute("data-streaming-body", "");
      bubble.appendChild(body);
      el.dataset.streaming = "true";
    }
    return body;
  }

  function showRendered(el, html) {
    var box = scroller();
    var stick = nearBottom(box);
    var body = streamingBody(el);
    // Server-rendered and sanitised (nh3) like the final answer; never the raw model text as HTML.
    body.innerHTML = html;
    enhance(body);
    if (stick) box.scrollTop = box.scrollHeight;
  }

  function follow(el) {
    if (el.dataset.streamFollowed) return;
    el.dataset.streamFollowed = "true";
    if (polling) { poll(el); return; }

    var source = new EventSource(el.dataset.streamUrl);
    var errors = 0;
    source.addEventListener("render", function (event) {
      errors = 0;
      showRendered(el, JSON.parse(event.data).html);
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
