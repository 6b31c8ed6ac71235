// Optional: filters the topic list as you type and picks "only these topics" when a topic
// box is ticked. Every form works without it.
(function () {
  document.querySelectorAll("[data-topic-picker]").forEach(function (picker) {
    var filter = picker.querySelector(".topic-filter");
    var input = filter && filter.querySelector("input");
    var some = picker.querySelector("input[name=topic_mode][value=some]");
    if (filter && input) {
      filter.hidden = false;
      input.addEventListener("input", function () {
        var q = input.value.trim().toLowerCase();
        picker.querySelectorAll(".topic-group").forEach(function (group) {
          var shown = 0;
          group.querySelectorAll(".choice").forEach(function (item) {
            var match = !q || item.textContent.toLowerCase().indexOf(q) !== -1;
            item.hidden = !match;
            if (match) shown += 1;
          });
          group.hidden = shown === 0;
        });
      });
    }
    picker.querySelectorAll("input[name=topics]").forEach(function (box) {
      box.addEventListener("change", function () {
        if (box.checked && some) some.checked = true;
      });
    });
  });
})();
