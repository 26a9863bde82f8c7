(function () {
  "use strict";
  // A list shows at least LIVE matching changes when it has them; "Show older" adds CHUNK more.
  var main = document.querySelector("main");
  var LIVE = Number(main.getAttribute("data-live"));
  var CHUNK = Number(main.getAttribute("data-chunk"));
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input[data-filter]"));
  var count = document.getElementById("shown-count");
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.country, section.other"));

  function chosen(kind) {
    var values = new Set();
    boxes.forEach(function (box) {
      if (box.getAttribute("data-filter") === kind && box.checked) {
        values.add(box.value);
      }
    });
    return values;
  }

  function matcher() {
    var classes = chosen("class");
    var sources = chosen("source");
    return {
      change: function (element) {
        return classes.has(element.getAttribute("data-class")) && sources.has(element.getAttribute("data-source"));
      },
      source: function (element) {
        return sources.has(element.getAttribute("data-source"));
      }
    };
  }

  // Shows or hides each element; returns how many match, and adds their change ids to ``ids``.
  function mark(elements, test, ids) {
    var matching = 0;
    Array.prototype.forEach.call(elements, function (element) {
      var show = test(element);
      element.classList.toggle("off", !show);
      if (show) {
        matching += 1;
        if (ids) {
          ids.add(element.getAttribute("data-id"));
        }
      }
    });
    return matching;
  }

  // The inert chunks of older changes still in a list.
  function chunks(list) {
    return Array.prototype.slice.call(list.querySelectorAll(":scope > template"));
  }

  function rowsOf(chunk) {
    return chunk.content.querySelectorAll("li.change");
  }

  // Moves rows from the start of ``chunk`` into the list, just before it, until ``wanted`` of
  // them match or the chunk is empty; the rows keep their order. Returns the matching ones moved.
  function take(chunk, test, wanted) {
    var moved = 0;
    var taken = document.createDocumentFragment();
    var row = chunk.content.firstElementChild;
    while (row && moved < wanted) {
      if (test(row)) {
        moved += 1;
      }
      taken.appendChild(row);
      row = chunk.content.firstElementChild;
    }
    chunk.parentNode.insertBefore(taken, chunk);
    if (!row) {
      chunk.remove();
    }
    return moved;
  }

  function tell(section, shown, left) {
    var empty = section.querySelector(".empty");
    var more = section.querySelector(".more");
    if (empty) {
      empty.hidden = shown > 0;
    }
    if (more) {
      more.hidden = left === 0;
      more.querySelector(".left").textContent = left + (left === 1 ? " older change" : " older changes") + " not shown";
    }
  }

  // Marks every change of the section, the ones not built yet included; with ``fill``, builds
  // older ones until LIVE matching changes show (when there are that many).
  function refresh(section, test, ids, fill) {
    var list = section.querySelector("ol.changes");
    if (!list) {
      return;
    }
    var shown = mark(list.querySelectorAll(":scope > li.change"), test, ids);
    var left = 0;
    chunks(list).forEach(function (chunk) {
      var matching = mark(rowsOf(chunk), test, ids);
      if (fill && matching && shown < LIVE) {
        var moved = take(chunk, test, LIVE - shown);
        shown += moved;
        matching -= moved;
      }
      left += matching;
    });
    tell(section, shown, left);
  }

  function apply() {
    var test = matcher();
    var ids = new Set();
    mark(document.querySelectorAll("svg.timeline circle[data-class]"), test.change, null);
    mark(document.querySelectorAll("svg.timeline .step, svg.timeline .lane"), test.source, null);
    sections.forEach(function (section) {
      refresh(section, test.change, ids, true);
    });
    count.textContent = String(ids.size);
  }

  function showOlder(section) {
    var test = matcher().change;
    var added = 0;
    chunks(section.querySelector("ol.changes")).forEach(function (chunk) {
      if (added < CHUNK) {
        mark(rowsOf(chunk), test, null);
        added += take(chunk, test, CHUNK - added);
      }
    });
    refresh(section, test, null, false);
  }

  boxes.forEach(function (box) {
    box.addEventListener("change", apply);
  });
  sections.forEach(function (section) {
    var button = section.querySelector("button.show-older");
    if (button) {
      button.addEventListener("click", function () {
        showOlder(section);
      });
    }
  });
  // The newest part of a timeline too wide for the screen is the one to see first.
  Array.prototype.forEach.call(document.querySelectorAll(".chart .scroll"), function (box) {
    box.scrollLeft = box.scrollWidth;
  });
})();
