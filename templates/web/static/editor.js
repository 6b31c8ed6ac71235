// Optional: updates the Markdown preview beside each editor as you type (the "Update
// preview" button does the same without JavaScript). The HTML comes from the server's own
// renderer (raw HTML off), so the preview is what the digest shows.
(function () {
  var form = document.querySelector("form.summary-editor");
  if (!form) return;
  var url = form.getAttribute("data-preview-url");
  var token = form.querySelector("input[name=csrf_token]");
  form.querySelectorAll("textarea[data-preview]").forEach(function (area) {
    var target = document.getElementById(area.getAttribute("data-preview"));
    var timer = null;
    var asked = 0;
    area.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        var body = new FormData();
        body.append("text", area.value);
        body.append("csrf_token", token ? token.value : "");
        var mine = ++asked;
        fetch(url, { method: "POST", body: body, credentials: "same-origin" })
          .then(function (response) { return response.ok ? response.json() : null; })
          .then(function (data) {
            if (data && mine === asked) target.innerHTML = data.html;
          })
          .catch(function () {});
      }, 250);
    });
  });
})();
