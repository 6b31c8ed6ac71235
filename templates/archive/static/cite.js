/* "Copy citation" on a summary page: copies the plain-text citation of the summary. Without
   this script (or without a clipboard) the button stays hidden; the citation can be selected. */
(function () {
  "use strict";
  if (!navigator.clipboard || !window.isSecureContext) {
    return;
  }
  Array.prototype.forEach.call(document.querySelectorAll(".copy-button"), function (button) {
    var status = button.parentNode.querySelector(".copy-status");
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(button.getAttribute("data-copy")).then(
        function () { status.textContent = "Copied."; },
        function () { status.textContent = "Could not copy: select the citation instead."; }
      );
    });
  });
})();
