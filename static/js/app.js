// Small, dependency-free behaviour on top of htmx. Every page works without it.
(function () {
  "use strict";
  // Swap 422 responses (a form re-rendered with its errors), as htmx does not by default.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  // Toasts: a `showToast` HX-Trigger event with {"message": "..."} shows a confirmation.
  document.body && document.body.addEventListener("showToast", function (event) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var toast = document.createElement("div");
    toast.className = "toast toast--success";
    toast.textContent = (event.detail && event.detail.message) || "Done.";
    box.appendChild(toast);
    setTimeout(function () { toast.remove(); }, 6000);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".toast").forEach(function (toast) {
      setTimeout(function () { toast.remove(); }, 8000);
    });
  });
})();

// Dialogs (the "Adjust balance" form): content htmx swaps into a closed <dialog> opens
// it as a modal; [data-close-dialog] links and the `closeDialog` HX-Trigger event close it.
// After a 422 swap, focus moves to the first field with an error.
(function () {
  "use strict";
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    var dialog = target && target.closest && target.closest("dialog");
    if (!dialog) return;
    if (!dialog.open) dialog.showModal();
    var invalid = dialog.querySelector("[aria-invalid=true]");
    var first = invalid || dialog.querySelector("input:checked, input:not([type=hidden]), textarea");
    if (first) first.focus();
  });
  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-close-dialog]");
    var dialog = closer && closer.closest("dialog");
    if (dialog) {
      event.preventDefault();
      dialog.close();
    }
    // A click outside an open "..." menu closes it.
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    });
  });
  document.body.addEventListener("closeDialog", function () {
    document.querySelectorAll("dialog[open]").forEach(function (dialog) { dialog.close(); });
  });
})();
