/* Full-text search over the Pagefind index built with the site (pagefind/ beside this folder).
   The query lives in the URL (?q=...). If the site was built without the index, say so. */
(function () {
  "use strict";
  var form = document.getElementById("search-form");
  if (!form) {
    return;
  }
  var input = document.getElementById("search-input");
  var status = document.getElementById("search-status");
  var list = document.getElementById("search-results");
  var loading = null;
  var latest = 0;
  var timer = null;

  function load() {
    if (!loading) {
      loading = import(form.getAttribute("data-pagefind")).then(function (pagefind) {
        return pagefind.options({ baseUrl: form.getAttribute("data-base") }).then(function () {
          return pagefind;
        });
      });
    }
    return loading;
  }

  function keepInURL(query) {
    var url = window.location.pathname + (query ? "?q=" + encodeURIComponent(query) : "");
    if (url !== window.location.pathname + window.location.search) {
      window.history.replaceState(null, "", url);
    }
  }

  function render(results, count) {
    list.replaceChildren();
    results.forEach(function (data) {
      var item = document.createElement("li");
      var heading = document.createElement("h2");
      var link = document.createElement("a");
      link.href = data.url;
      link.textContent = (data.meta && data.meta.title) || data.url;
      heading.appendChild(link);
      var excerpt = document.createElement("p");
      excerpt.innerHTML = data.excerpt; /* Pagefind escapes the text and adds <mark> only */
      item.appendChild(heading);
      item.appendChild(excerpt);
      list.appendChild(item);
    });
    status.textContent = count === 0
      ? "No summary contains these words."
      : count + (count === 1 ? " summary found." : " summaries found.");
  }

  function run(query) {
    var mine = ++latest;
    query = query.trim();
    keepInURL(query);
    if (!query) {
      list.replaceChildren();
      status.textContent = "";
      return;
    }
    status.textContent = "Searching…";
    load()
      .then(function (pagefind) { return pagefind.search(query); })
      .then(function (search) {
        return Promise.all(search.results.slice(0, 30).map(function (r) { return r.data(); }))
          .then(function (data) { return { data: data, count: search.results.length }; });
      })
      .then(function (found) {
        if (mine === latest) {
          render(found.data, found.count);
        }
      })
      .catch(function () {
        status.textContent = "Search is not available on this copy of the archive. " +
          "Browse by topic, type of research or month instead.";
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    run(input.value);
  });
  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(function () { run(input.value); }, 250);
  });
  var initial = new URLSearchParams(window.location.search).get("q");
  if (initial) {
    input.value = initial;
    run(initial);
  }
})();
