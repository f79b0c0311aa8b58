// Console control pages: confirmation dialogs (kill switch, revoking a key) and copying a new API key.
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    const opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      const required = opener.dataset.require && document.getElementById(opener.dataset.require);
      if (required && !required.value.trim()) {
        required.setAttribute("aria-invalid", "true");
        required.focus();
        return;
      }
      const dialog = document.getElementById(opener.dataset.openDialog);
      if (dialog && typeof dialog.showModal === "function") dialog.showModal();
      return;
    }
    const closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      closer.closest("dialog").close();
      return;
    }
    const copier = event.target.closest("[data-copy]");
    if (copier) {
      const source = document.getElementById(copier.dataset.copy);
      const text = source ? source.textContent.trim() : "";
      const done = function () {
        copier.textContent = "Copied";
        setTimeout(function () { copier.textContent = "Copy"; }, 2000);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { selectText(source); });
      } else {
        selectText(source);
        if (document.execCommand("copy")) done();
      }
    }
  });

  function selectText(element) {
    if (!element) return;
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
})();
