/* ConvoSuite chat: code blocks in rendered answers get a language label, highlighting (highlight.js,
 * vendored) and a Copy button. Answers are rendered and sanitised on the server (chat/rendering.py); a
 * block's language arrives as data-lang. Runs on every swap (htmx.onLoad) and on each live render of an
 * answer being written (chat_stream.js calls ConvoSuiteMarkdown.enhance). */
(function () {
  "use strict";

  function enhance(root) {
    if (!root || !root.querySelectorAll) return;
    root.querySelectorAll(".markdown pre").forEach(function (pre) {
      if (pre.parentNode && pre.parentNode.classList && pre.parentNode.classList.contains("code-block")) return;
      var code = pre.querySelector("code");
      var language = (pre.getAttribute("data-lang") || "").toLowerCase();
      var block = document.createElement("div");
      block.className = "code-block";
      var bar = document.createElement("div");
      bar.className = "code-block__bar";
      var label = document.createElement("span");
      label.className = "code-block__lang";
      label.textContent = language || "text";
      var copy = document.createElement("button");
      copy.type = "button";
      copy.className = "code-block__copy";
      copy.setAttribute("data-copy-code", "");
      copy.setAttribute("aria-label", "Copy code" + (language ? " (" + language + ")" : ""));
      copy.textContent = "Copy code";
      bar.appendChild(label);
      bar.appendChild(copy);
      pre.parentNode.insertBefore(block, pre);
      block.appendChild(bar);
      block.appendChild(pre);
      if (code && language && window.hljs && window.hljs.getLanguage(language)) {
        window.hljs.highlightElement(code);
      }
    });
  }

  window.ConvoSuiteMarkdown = { enhance: enhance };
  if (window.htmx) window.htmx.onLoad(enhance);
})();
