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
