// The login page. Follows the transaction's state as server-sent events (GET .../events, backed
// by Redis pub/sub) and falls back to polling GET .../status; while nobody has picked the login
// up it redraws the QR code every second from GET .../qr. All three answer only this browser.
// Without JavaScript the page still works: a reload gives a fresh QR code, Continue moves on.
(function () {
  "use strict";
  var status = document.getElementById("login-status");
  if (!status) { return; }
  var statusUrl = status.getAttribute("data-status-url");
  var continueUrl = status.getAttribute("data-continue-url");
  var eventsUrl = status.getAttribute("data-events-url");
  var qrUrl = status.getAttribute("data-qr-url");
  var interval = parseInt(status.getAttribute("data-poll-ms"), 10) || 1500;
  var qrInterval = parseInt(status.getAttribute("data-qr-ms"), 10) || 1000;
  var unavailable = status.getAttribute("data-unavailable");
  var state = status.getAttribute("data-state");
  var finalStates = { finished: 1, cancelled: 1, failed: 1, expired: 1 };
  var done = false;
  var polling = false;

  var qrArea = document.getElementById("qr-area");
  var qrHidden = document.getElementById("qr-hidden");
  var qrImage = document.getElementById("qr-image");
  var qrContent = document.getElementById("qr-content");
  var appLink = document.getElementById("app-link");
  var sameDevice = document.getElementById("same-device");

  function show(message) {
    if (message && status.textContent !== message) { status.textContent = message; }
  }

  function hideQr() {
    if (qrArea && !qrArea.hidden) { qrArea.hidden = true; }
    if (sameDevice) { sameDevice.hidden = true; }
    if (qrHidden) { qrHidden.hidden = false; }
  }

  // One state change, from an event or a poll. Returns true when the page leaves.
  function apply(newState, message) {
    if (done) { return true; }
    if (newState !== "created") { hideQr(); }
    state = newState;
    status.setAttribute("data-state", newState);
    show(message);
    if (newState === "card_verified") {
      done = true;
      window.location.assign(continueUrl);
      return true;
    }
    if (finalStates[newState]) {
      done = true;
      window.location.reload();  // the server's page says why and offers to start again
      return true;
    }
    return false;
  }

  // -- polling (the fallback) -------------------------------------------------------------------
  function poll() {
    if (done) { return; }
    fetch(statusUrl, { credentials: "same-origin", cache: "no-store",
                       headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.status >= 500) { throw new Error("unavailable"); }
        return response.json();
      })
      .then(function (body) {
        if (!body.state) { done = true; window.location.reload(); return; }
        if (body.continue_url) { continueUrl = body.continue_url; }
        if (!apply(body.state, body.message)) { window.setTimeout(poll, interval); }
      })
      .catch(function () {
        show(unavailable);
        window.setTimeout(poll, interval * 2);
      });
  }

  function startPolling() {
    if (polling || done) { return; }
    polling = true;
    window.setTimeout(poll, interval);
  }

  // -- server-sent events -----------------------------------------------------------------------
  function listen() {
    if (!window.EventSource || !eventsUrl) { startPolling(); return; }
    var failures = 0;
    var source = new EventSource(eventsUrl);
    source.addEventListener("status", function (event) {
      var body;
      try { body = JSON.parse(event.data); } catch (e) { return; }
      failures = 0;
      if (!body.state) {  // the server lost Redis: say so and poll instead
        source.close();
        show(unavailable);
        startPolling();
        return;
      }
      if (apply(body.state, body.message)) { source.close(); }
    });
    source.onerror = function () {
      failures += 1;
      if (done) { source.close(); return; }
      if (source.readyState === EventSource.CLOSED || failures >= 3) {
        source.close();
        startPolling();
      }
    };
  }

  // -- the rotating QR code ---------------------------------------------------------------------
  function drawQr(body) {
    if (qrImage && body.svg && window.DOMParser) {
      var svg = new DOMParser().parseFromString(body.svg, "image/svg+xml").documentElement;
      if (svg && svg.nodeName.toLowerCase() === "svg") {
        qrImage.replaceChildren(document.importNode(svg, true));
        qrImage.setAttribute("data-t", String(body.t));
      }
    }
    if (qrContent) { qrContent.textContent = body.content; }
    if (appLink && body.app_link) { appLink.setAttribute("href", body.app_link); }
  }

  var qrPaused = false;
  function refreshQr() {
    if (done || state !== "created" || !qrUrl) { return; }
    if (document.hidden) { qrPaused = true; return; }  // nobody can scan a hidden page
    fetch(qrUrl, { credentials: "same-origin", cache: "no-store",
                   headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.status === 409 || response.status === 410) {
          hideQr();
          startPolling();  // learn the new state even if the event stream is slow
          return null;
        }
        if (response.status === 403) { done = true; return null; }
        if (!response.ok) { throw new Error("qr"); }
        return response.json();
      })
      .then(function (body) {
        if (body) { drawQr(body); }
        if (state === "created" && !done) { window.setTimeout(refreshQr, qrInterval); }
      })
      .catch(function () { window.setTimeout(refreshQr, qrInterval * 2); });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && qrPaused) { qrPaused = false; refreshQr(); }
  });

  var enlarge = document.getElementById("qr-enlarge");
  var figure = document.getElementById("qr-figure");
  if (enlarge && figure) {
    enlarge.addEventListener("click", function () {
      var large = figure.classList.toggle("large");
      enlarge.setAttribute("aria-pressed", large ? "true" : "false");
      enlarge.textContent = enlarge.getAttribute(large ? "data-shrink" : "data-enlarge");
    });
  }

  // Demo only (IDP_DEMO_PHONE_URL): clicking the QR code "scans" it with the phone simulator.
  var phone = qrImage && qrImage.getAttribute("data-demo-phone");
  if (phone && qrContent) {
    var scan = function () {
      window.open(phone + "/?qr=" + encodeURIComponent(qrContent.textContent.trim()),
                  "myna-phone", "noopener");
    };
    qrImage.addEventListener("click", scan);
    qrImage.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); scan(); }
    });
  }

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

  // -- more time (WCAG 2.2.1): a minute before the login expires the warning is announced
  // (aria-live); "Give me more time" extends it on the server without leaving the page.
  var extendForm = document.getElementById("extend-form");
  if (extendForm) {
    var extendMessage = document.getElementById("extend-message");
    var extendButton = document.getElementById("extend-button");
    var expiresNote = document.getElementById("expires-note");
    var extendHint = document.getElementById("extend-hint");
    var warnSeconds = parseInt(extendForm.getAttribute("data-warn-seconds"), 10) || 60;
    var deadline = Date.now() + (parseInt(extendForm.getAttribute("data-expires-in"), 10) || 0) * 1000;
    var warned = false;
    var say = function (message) {
      if (extendMessage && message) { extendMessage.textContent = message; }
    };
    var watchClock = function () {
      if (done) { return; }
      var left = (deadline - Date.now()) / 1000;
      if (!warned && left <= warnSeconds) {
        warned = true;
        extendForm.classList.add("urgent");
        say(extendForm.getAttribute("data-warning"));
      }
      window.setTimeout(watchClock, 1000);
    };
    extendForm.addEventListener("submit", function (event) {
      if (!window.fetch || !window.FormData) { return; }  // the plain form post works too
      event.preventDefault();
      if (extendButton) { extendButton.disabled = true; }
      fetch(extendForm.getAttribute("action"), {
        method: "POST", credentials: "same-origin", cache: "no-store",
        headers: { "Accept": "application/json" }, body: new FormData(extendForm)
      })
        .then(function (response) {
          return response.json().then(function (body) { return { status: response.status, body: body }; });
        })
        .then(function (answer) {
          var body = answer.body || {};
          if (answer.status === 200) {
            deadline = Date.now() + body.expires_in * 1000;
            warned = false;
            extendForm.classList.remove("urgent");
            if (expiresNote && body.note) { expiresNote.textContent = body.note; }
            if (extendHint) { extendHint.hidden = true; }
            say(body.message);
            if (extendButton) { extendButton.disabled = false; extendButton.hidden = body.extensions_left <= 0; }
            return;
          }
          say(body.message);
          if (extendButton) { extendButton.hidden = true; }
          if (answer.status === 410) { startPolling(); }
        })
        .catch(function () {
          if (extendButton) { extendButton.disabled = false; }
          say(unavailable);
        });
    });
    watchClock();
  }

  if (state !== "created") { hideQr(); }
  listen();
  window.setTimeout(refreshQr, qrInterval);
})();
