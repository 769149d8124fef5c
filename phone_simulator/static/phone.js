// The phone simulator's small helpers: the PIN pad, and scanning at once when the page was
// opened with a QR (the demo's "click the QR code"). Everything works without JavaScript too.
(function () {
  "use strict";

  var scanForm = document.getElementById("scan-form");
  if (scanForm && scanForm.getAttribute("data-auto") === "1") {
    scanForm.submit();  // a camera scan sends the frame at once: frames live a few seconds
  }

  var form = document.getElementById("secret-form");
  if (form) {
    form.addEventListener("submit", function () {
      var ok = document.getElementById("ok");
      if (ok) { ok.disabled = true; }  // one send per screen (the server ignores a second too)
    });
  }

  var pad = document.getElementById("pinpad");
  var input = document.getElementById("secret");
  if (!pad || !input) { return; }
  var dots = document.querySelectorAll("#pin-dots span");
  var count = document.getElementById("pin-count");
  pad.hidden = false;

  function render() {
    for (var i = 0; i < dots.length; i++) {
      dots[i].className = i < input.value.length ? "on" : "";
    }
    if (count) {
      count.textContent = count.getAttribute("data-template").replace("{n}", input.value.length);
    }
  }

  pad.addEventListener("click", function (event) {
    var key = event.target.closest("button");
    if (!key) { return; }
    var digit = key.getAttribute("data-digit");
    var action = key.getAttribute("data-action");
    if (digit !== null && input.value.length < 4) { input.value += digit; }
    if (action === "delete") { input.value = input.value.slice(0, -1); }
    if (action === "clear") { input.value = ""; }
    render();
  });
  input.addEventListener("input", function () {
    input.value = input.value.replace(/[^0-9]/g, "").slice(0, 4);
    render();
  });
  render();
})();
