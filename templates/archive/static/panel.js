/* The side panel is a top panel on phones: fold its three lists there, so the page itself
   comes first; each stays one tap away. Without this script the lists simply stay open. */
(function () {
  "use strict";
  if (window.matchMedia && window.matchMedia("(max-width: 56rem)").matches) {
    document.querySelectorAll("details[data-fold-narrow]").forEach(function (details) {
      details.open = false;
    });
  }
})();
