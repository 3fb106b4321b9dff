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
  function dismissButton(className, onClick) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = className;
    button.setAttribute("aria-label", "Dismiss");
    button.textContent = "×";
    button.addEventListener("click", onClick);
    return button;
  }

  // Toasts: a `showToast` HX-Trigger event with {"message": "..."} shows a confirmation.
  // It goes after TOAST_MS, but not while the pointer is over it or focus is in it (the
  // time left starts again when they leave); its "Dismiss" button closes it at once.
  var TOAST_MS = 6000;
  function showToast(text) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var toast = document.createElement("div");
    toast.className = "toast toast--success";
    var message = document.createElement("span");
    message.className = "toast__text";
    message.textContent = text;
    toast.appendChild(message);
    var timer = null, left = TOAST_MS, startedAt = 0;
    function close() {
      clearTimeout(timer);
      // Focus in a toast that goes would fall to <body>: it goes back to the page.
      if (toast.contains(document.activeElement)) {
        document.getElementById("main").focus({ preventScroll: true });
      }
      toast.remove();
    }
    function run() { startedAt = Date.now(); timer = setTimeout(close, left); }
    function pause() {
      if (timer === null) return;
      clearTimeout(timer);
      timer = null;
      left = Math.max(left - (Date.now() - startedAt), 1000);
    }
    function resume() {
      if (timer !== null || toast.matches(":hover") || toast.contains(document.activeElement)) return;
      run();
    }
    toast.appendChild(dismissButton("toast__close", close));
    toast.addEventListener("mouseenter", pause);
    toast.addEventListener("focusin", pause);
    toast.addEventListener("mouseleave", resume);
    toast.addEventListener("focusout", function () { setTimeout(resume, 0); });
    box.appendChild(toast);
    run();
  }
  document.body && document.body.addEventListener("showToast", function (event) {
    showToast((event.detail && event.detail.message) || "Done.");
  });
  // A confirmation after a redirect is inline at the top of <main> (base.html); it stays
  // until the next page or its "Dismiss".
  document.querySelectorAll(".flash").forEach(function (flash) {
    flash.appendChild(dismissButton("flash__close", function () {
      document.getElementById("main").focus({ preventScroll: true });
      flash.remove();
    }));
  });
})();

// Focus and highlight after an htmx action replaced what had focus.
// - htmx itself puts focus back on an element of the same id in the new content: the
//   "Adjust balance" button (id adjust-balance) when the Credit balance section refreshes
//   after an adjustment, once the dialog closed and gave focus back to that button.
// - The `creditsChanged` event names the new transaction: its rows, wherever a list shows
//   them (data-transaction), are highlighted for a few seconds when they arrive.
// - "Mark as read" replaces the notification and its button: the notification is
//   highlighted, and focus moves to the next "Mark as read" (else the notification itself),
//   so a keyboard goes down the list without starting again at the top.
(function () {
  "use strict";
  var newTransaction = null;

  function highlight(element) {
    element.classList.remove("just-changed");
    void element.offsetWidth; // restart the animation
    element.classList.add("just-changed");
    setTimeout(function () { element.classList.remove("just-changed"); }, 4000);
  }

  document.body.addEventListener("creditsChanged", function (event) {
    newTransaction = event.detail && event.detail.transaction ? String(event.detail.transaction) : null;
    setTimeout(function () { newTransaction = null; }, 5000);
  });

  var readNotification = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.matches && target.matches(".notification") && target.contains(document.activeElement)) {
      readNotification = target.id;
    }
  });

  document.addEventListener("htmx:afterSettle", function () {
    if (newTransaction) {
      document.querySelectorAll('[data-transaction="' + newTransaction + '"]').forEach(highlight);
    }
    if (readNotification) {
      var item = document.getElementById(readNotification);
      readNotification = null;
      if (!item) return;
      highlight(item);
      var next = null, sibling = item.nextElementSibling;
      while (sibling && !next) {
        next = sibling.querySelector(".notification form button");
        sibling = sibling.nextElementSibling;
      }
      if (next) {
        next.focus();
      } else {
        item.setAttribute("tabindex", "-1");
        item.focus();
      }
    }
  });
})();

// Dialogs (Adjust balance, Reverse, Transfer credits): content htmx swaps into a closed
// <dialog> opens it as a modal, named by the content's heading; [data-close-dialog] links
// and the `closeDialog` HX-Trigger event close it. After a 422 swap, focus moves to the
// first field with an error.
(function () {
  "use strict";
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    var dialog = target && target.closest && target.closest("dialog");
    if (!dialog) return;
    var heading = dialog.querySelector("h2");
    if (heading) dialog.setAttribute("aria-label", heading.textContent.trim());
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

// The Adjust balance form says what it will do as one types: the button "Add 10 credits",
// the balance before and after. The words are those of credits/forms.py (submit_label,
// typed_amount) and the numbers those of spacecredits/formats.py (credits_number):
// tests/browser/test_filters_and_wording.py checks both say the same.
(function () {
  "use strict";
  var AMOUNT = /^[0-9]+(\.[0-9]{1,2})?$/;

  function creditsNumber(value) {
    var whole = Math.round(value * 100) % 100 === 0;
    var digits = whole ? 0 : 2;
    return value.toLocaleString("en-GB", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  function creditsWords(value) {
    return creditsNumber(value) + (value === 1 ? " credit" : " credits");
  }

  function update(form) {
    var kind = form.querySelector("input[name=kind]:checked");
    var deduct = kind && kind.value === "deduct";
    var typed = (form.querySelector("input[name=amount]") || {}).value || "";
    typed = typed.trim();
    var amount = AMOUNT.test(typed) && Number(typed) > 0 ? Number(typed) : null;
    var label = form.querySelector("[data-submit-label]");
    if (label) label.textContent = (deduct ? "Deduct " : "Add ") + (amount ? creditsWords(amount) : "credits");
    var balance = Number(form.dataset.balance);
    var after = balance + (amount ? (deduct ? -amount : amount) : 0);
    var shown = form.querySelector("[data-balance-after]");
    if (shown) shown.textContent = (after < 0 ? "-" : "") + creditsNumber(Math.abs(after));
    var warning = form.querySelector("[data-balance-warning]");
    if (warning) warning.hidden = after >= 0;
  }

  function watch(root) {
    var form = root.querySelector ? root.querySelector("form[data-balance]") : null;
    if (!form || form.dataset.watched) return;
    form.dataset.watched = "1";
    form.addEventListener("input", function () { update(form); });
    form.addEventListener("change", function () { update(form); });
    update(form);
  }
  watch(document);
  document.addEventListener("htmx:afterSwap", function (event) { watch(event.detail.target); });
})();
