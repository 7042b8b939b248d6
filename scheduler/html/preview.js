// Images are embedded once (in #media) and shared by every card that shows them; the filters
// hide the cards that do not match. Nothing here reaches the network.
(function () {
  "use strict";
  var media = JSON.parse(document.getElementById("media").textContent);
  document.querySelectorAll("img[data-media]").forEach(function (img) {
    var uri = media[img.getAttribute("data-media")];
    if (uri) { img.src = uri; }
  });
  var form = document.getElementById("filters");
  var shown = document.getElementById("shown");
  var cards = document.querySelectorAll(".occurrence");
  var days = document.querySelectorAll(".day");
  var keys = ["campaign", "account", "status"];
  function apply() {
    var want = keys.map(function (k) { return form.elements[k].value; });
    var n = 0;
    cards.forEach(function (card) {
      var match = keys.every(function (k, i) { return !want[i] || card.dataset[k] === want[i]; });
      card.hidden = !match;
      if (match) { n += 1; }
    });
    days.forEach(function (day) {
      var note = day.querySelector(".unmatched");
      if (note) { note.hidden = day.querySelector(".occurrence:not([hidden])") !== null; }
    });
    shown.textContent = want.some(Boolean) ? n + " of " + cards.length + " shown" : "";
  }
  form.hidden = false;
  form.addEventListener("change", apply);
  form.addEventListener("reset", function () { window.setTimeout(apply, 0); });
  form.addEventListener("submit", function (event) { event.preventDefault(); });
}());
