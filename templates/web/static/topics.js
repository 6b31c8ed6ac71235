// The topic picker, made shorter and quicker with JavaScript; every form works without it
// (then every topic box is simply shown). While "All topics" is chosen the list is collapsed;
// "Find a topic" shows only the matching topics; ticked topics stay visible as chips, buttons
// that untick them. Everything is native controls, so the keyboard works as usual: Tab,
// Space and Enter, arrow keys between the radios, and no trap.
(function () {
  function each(list, fn) { Array.prototype.forEach.call(list, fn); }

  each(document.querySelectorAll("[data-topic-picker]"), function (picker) {
    var filter = picker.querySelector(".topic-filter");
    var input = filter && filter.querySelector("input");
    var count = picker.querySelector("#topic-count");
    var chipsBox = picker.querySelector(".topic-chips");
    var chips = picker.querySelector(".chips");
    var modes = picker.querySelectorAll("input[name=topic_mode]");
    var some = picker.querySelector("input[name=topic_mode][value=some]");
    var boxes = picker.querySelectorAll("input[name=topics]");

    function label(box) { return box.parentNode.textContent.trim(); }

    function showMode() {
      // Collapsed unless "Only the topics I tick" is chosen (or a topic has an error).
      picker.classList.toggle("collapsed", !(some && some.checked));
    }

    function renderChips() {
      chips.textContent = "";
      var ticked = 0;
      each(boxes, function (box) {
        if (!box.checked) return;
        ticked += 1;
        var item = document.createElement("li");
        var chip = document.createElement("button");
        chip.type = "button";
        chip.className = "chip";
        chip.setAttribute("aria-label", "Remove " + label(box));
        chip.dataset.value = box.value;
        var text = document.createElement("span");
        text.textContent = label(box);
        var x = document.createElement("span");
        x.className = "x";
        x.setAttribute("aria-hidden", "true");
        x.textContent = "\u00d7";
        chip.appendChild(text);
        chip.appendChild(x);
        chip.addEventListener("click", function () {
          var next = item.nextElementSibling || item.previousElementSibling;
          box.checked = false;
          renderChips();
          // Keep the focus somewhere sensible: the next chip, else the search box.
          var target = next && chips.querySelector('[data-value="' + next.firstChild.dataset.value + '"]');
          (target || input || some).focus();
        });
        item.appendChild(chip);
        chips.appendChild(item);
      });
      chipsBox.hidden = ticked === 0;
    }

    function applyFilter() {
      var q = input.value.trim().toLowerCase();
      var shown = 0;
      each(picker.querySelectorAll(".topic-group"), function (group) {
        var inGroup = 0;
        each(group.querySelectorAll(".choice"), function (item) {
          var match = !q || item.textContent.toLowerCase().indexOf(q) !== -1;
          item.hidden = !match;
          if (match) inGroup += 1;
        });
        group.hidden = inGroup === 0;
        shown += inGroup;
      });
      count.textContent = q ? (shown === 0 ? "No topic matches." : shown + (shown === 1 ? " topic matches." : " topics match.")) : "";
    }

    if (filter && input) {
      filter.hidden = false;
      input.addEventListener("input", applyFilter);
      input.addEventListener("keydown", function (event) {
        if (event.key === "Enter") event.preventDefault(); // do not send the form from the search box
      });
    }
    each(modes, function (radio) { radio.addEventListener("change", showMode); });
    each(boxes, function (box) {
      box.addEventListener("change", function () {
        if (box.checked && some) { some.checked = true; showMode(); }
        renderChips();
      });
    });
    showMode();
    renderChips();
  });

  // Focus the first field in error (the page also sets `autofocus` on it for browsers without JS).
  var first = document.querySelector("[aria-invalid=true], [autofocus]");
  if (first && document.activeElement !== first) first.focus();
})();
