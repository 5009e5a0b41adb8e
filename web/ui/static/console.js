// Auto-refresh without a SPA: while the page shows active runs (<main data-refresh="N">), fetch the
// same URL every N seconds and swap in the new <main>. It stops once nothing on the page is active,
// and skips a beat while someone is typing in a form or has a details panel open they may be reading.
(function () {
  "use strict";
  function schedule(main) {
    var seconds = parseFloat(main.getAttribute("data-refresh"));
    if (!seconds) { return; }
    window.setTimeout(function () { refresh(main); }, seconds * 1000);
  }
  function busy() {
    var el = document.activeElement;
    return el && (el.tagName === "INPUT" || el.tagName === "SELECT" || el.tagName === "TEXTAREA");
  }
  function refresh(main) {
    if (busy()) { schedule(main); return; }
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Console-Refresh": "1" } })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (!fresh) { return; }
        var open = Array.prototype.map.call(main.querySelectorAll("details[open]"), function (d) { return d.querySelector("summary").textContent; });
        main.innerHTML = fresh.innerHTML;
        Array.prototype.forEach.call(main.querySelectorAll("details"), function (d) {
          if (open.indexOf(d.querySelector("summary").textContent) >= 0) { d.open = true; }
        });
        if (fresh.hasAttribute("data-refresh")) {
          main.setAttribute("data-refresh", fresh.getAttribute("data-refresh"));
          schedule(main);
        } else {
          main.removeAttribute("data-refresh");
        }
      })
      .catch(function () { schedule(main); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var main = document.getElementById("live");
    if (main) { schedule(main); }
  });
})();
