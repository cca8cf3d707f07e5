// keten's screen: live updates of the family page (server-sent events) and the history's time
// slider. No framework, no build step; the pages work without it, minus the live parts.
(function () {
  "use strict";
  // Marks that the page has not been reloaded since this script ran (the browser tests check it).
  window.ketenLive = window.ketenLive || { loadedAt: Date.now(), updates: 0 };

  var main = document.getElementById("family");
  if (main && window.EventSource) {
    var source = new EventSource("/families/" + encodeURIComponent(main.dataset.family) + "/live");
    source.onmessage = function (e) {
      var update = JSON.parse(e.data);
      if (update.position > Number(main.dataset.position)) {
        // Keep the keyboard focus where it was, if that element is still there.
        var focused = document.activeElement && document.activeElement.id;
        main.innerHTML = update.html;
        main.dataset.position = String(update.position);
        window.ketenLive.updates += 1;
        if (focused) {
          var again = document.getElementById(focused);
          if (again) again.focus();
        }
      }
    };
  }

  var slider = document.getElementById("time-slider");
  if (slider) {
    var family = document.getElementById("history").dataset.family;
    var positions = slider.dataset.positions.split(" ");
    var times = slider.dataset.times.split(" ");
    var label = document.getElementById("as-of-label");
    var asked = 0;
    var load = function () {
      var i = Number(slider.value);
      label.textContent = times[i];
      var mine = ++asked;
      fetch("/families/" + encodeURIComponent(family) + "/as-of?position=" + positions[i], {
        credentials: "same-origin",
      })
        .then(function (r) { return r.text(); })
        .then(function (text) {
          // A later move of the slider wins over an answer that arrives late.
          if (mine !== asked) return;
          var current = document.getElementById("as-of");
          if (current) current.outerHTML = text;
        });
    };
    slider.addEventListener("input", load);
    slider.addEventListener("change", load);
  }
})();
