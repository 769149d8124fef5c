// The login page: poll the status endpoint (owned by this browser's cookie) and move on when the
// card has been verified. Without JavaScript the page still works with its Continue button.
(function () {
  "use strict";
  var status = document.getElementById("login-status");
  if (!status) { return; }
  var statusUrl = status.getAttribute("data-status-url");
  var continueUrl = status.getAttribute("data-continue-url");
  var interval = parseInt(status.getAttribute("data-poll-ms"), 10) || 1500;
  var state = status.getAttribute("data-state");
  var finalStates = { finished: 1, cancelled: 1, failed: 1, expired: 1 };

  function show(message) {
    if (message && status.textContent !== message) { status.textContent = message; }
  }

  function poll() {
    fetch(statusUrl, { credentials: "same-origin", cache: "no-store",
                       headers: { "Accept": "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (body.state !== state) { state = body.state; show(body.message); }
        if (state === "card_verified") { window.location.assign(body.continue_url || continueUrl); return; }
        if (finalStates[state] || !body.state) { window.location.reload(); return; }
        window.setTimeout(poll, interval);
      })
      .catch(function () { window.setTimeout(poll, interval * 2); });
  }
  window.setTimeout(poll, interval);

  var copy = document.getElementById("copy-command");
  var command = document.getElementById("reader-command");
  if (copy && command && navigator.clipboard) {
    copy.hidden = false;
    copy.addEventListener("click", function () {
      navigator.clipboard.writeText(command.textContent).then(function () {
        copy.textContent = copy.getAttribute("data-done");
      });
    });
  }
})();
