/* Full-text search over the Pagefind index built with the site (pagefind/ beside this folder),
   narrowed by the Pagefind filters "type" and "topic" (the two selects). The query and the
   filters live in the URL (?q=...&type=...&topic=...). If the site was built without the
   index, say so. */
(function () {
  "use strict";
  var form = document.getElementById("search-form");
  if (!form) {
    return;
  }
  var input = document.getElementById("search-input");
  var status = document.getElementById("search-status");
  var list = document.getElementById("search-results");
  var selects = Array.prototype.slice.call(form.querySelectorAll("select[data-filter]"));
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

  function chosenFilters() {
    var filters = {};
    selects.forEach(function (select) {
      if (select.value) {
        filters[select.getAttribute("data-filter")] = select.value;
      }
    });
    return filters;
  }

  function keepInURL(query, filters) {
    var params = new URLSearchParams();
    if (query) {
      params.set("q", query);
    }
    Object.keys(filters).forEach(function (name) { params.set(name, filters[name]); });
    var search = params.toString();
    var url = window.location.pathname + (search ? "?" + search : "");
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
      item.appendChild(heading);
      var type = data.filters && data.filters.type && data.filters.type[0];
      if (type) {
        var meta = document.createElement("p");
        meta.className = "meta";
        meta.textContent = type;
        item.appendChild(meta);
      }
      var excerpt = document.createElement("p");
      excerpt.innerHTML = data.excerpt; /* Pagefind escapes the text and adds <mark> only */
      item.appendChild(excerpt);
      list.appendChild(item);
    });
    status.textContent = count === 0
      ? "No summary matches."
      : count + (count === 1 ? " summary found." : " summaries found.");
  }

  function run(query) {
    var mine = ++latest;
    var filters = chosenFilters();
    var filtered = Object.keys(filters).length > 0;
    query = query.trim();
    keepInURL(query, filters);
    if (!query && !filtered) {
      list.replaceChildren();
      status.textContent = "";
      return;
    }
    status.textContent = "Searching…";
    load()
      .then(function (pagefind) {
        /* No words but a filter: every summary of that type or topic (Pagefind: null). */
        return pagefind.search(query || null, { filters: filters });
      })
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
  selects.forEach(function (select) {
    select.addEventListener("change", function () { run(input.value); });
  });
  var params = new URLSearchParams(window.location.search);
  var initial = params.get("q") || "";
  input.value = initial;
  selects.forEach(function (select) {
    var wanted = params.get(select.getAttribute("data-filter"));
    if (wanted && Array.prototype.some.call(select.options, function (o) { return o.value === wanted; })) {
      select.value = wanted;
    }
  });
  if (initial || Object.keys(chosenFilters()).length) {
    run(initial);
  }
})();
