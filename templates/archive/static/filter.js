/* Narrow the filter page's list by the ticked topics and types, and keep the choice in the URL
   (?topic=a&topic=b&type=x&match=all). Without this script the page lists every summary. */
(function () {
  "use strict";
  var form = document.getElementById("filter-form");
  var list = document.getElementById("filter-list");
  if (!form || !list) {
    return;
  }
  var status = document.getElementById("filter-status");
  var empty = document.getElementById("filter-empty");
  var clear = document.getElementById("filter-clear");
  var items = Array.prototype.slice.call(list.children);
  var total = items.length;

  function inputs(name) {
    return Array.prototype.slice.call(form.querySelectorAll('input[name="' + name + '"]'));
  }

  function ticked(name) {
    return inputs(name).filter(function (input) { return input.checked; })
      .map(function (input) { return input.value; });
  }

  function plural(count) {
    return count + (count === 1 ? " summary" : " summaries");
  }

  function readURL() {
    var params = new URLSearchParams(window.location.search);
    var topics = params.getAll("topic");
    var types = params.getAll("type");
    var match = params.get("match") === "all" ? "all" : "any";
    inputs("topic").forEach(function (input) { input.checked = topics.indexOf(input.value) !== -1; });
    inputs("type").forEach(function (input) { input.checked = types.indexOf(input.value) !== -1; });
    inputs("match").forEach(function (input) { input.checked = input.value === match; });
  }

  function writeURL(topics, types, all) {
    var params = new URLSearchParams();
    topics.forEach(function (slug) { params.append("topic", slug); });
    if (all && topics.length > 1) {
      params.set("match", "all");
    }
    types.forEach(function (slug) { params.append("type", slug); });
    var query = params.toString();
    var url = window.location.pathname + (query ? "?" + query : "");
    if (url !== window.location.pathname + window.location.search) {
      window.history.replaceState(null, "", url);
    }
  }

  function apply() {
    var topics = ticked("topic");
    var types = ticked("type");
    var all = ticked("match")[0] === "all";
    var shown = 0;
    items.forEach(function (item) {
      var own = (item.getAttribute("data-topics") || "").split(" ");
      var type = item.getAttribute("data-type");
      var has = function (slug) { return own.indexOf(slug) !== -1; };
      var topicOK = topics.length === 0 || (all ? topics.every(has) : topics.some(has));
      var typeOK = types.length === 0 || types.indexOf(type) !== -1;
      item.hidden = !(topicOK && typeOK);
      if (!item.hidden) {
        shown += 1;
      }
    });
    status.textContent = topics.length || types.length
      ? "Showing " + shown + " of " + plural(total) + "."
      : "All " + plural(total) + ".";
    empty.hidden = shown !== 0;
    writeURL(topics, types, all);
  }

  form.addEventListener("change", apply);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    apply();
  });
  if (clear) {
    clear.addEventListener("click", function (event) {
      event.preventDefault();
      inputs("topic").concat(inputs("type")).forEach(function (input) { input.checked = false; });
      apply();
    });
  }
  window.addEventListener("popstate", function () {
    readURL();
    apply();
  });
  readURL();
  apply();
})();
