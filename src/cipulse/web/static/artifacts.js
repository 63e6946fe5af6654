// The file viewer: "Collapse all" / "Expand all" for the JSON tree. Folding itself is plain
// <details>, so the tree works without this script.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-json]");
    if (!button) {
      return;
    }
    var open = button.getAttribute("data-json") === "expand";
    document.querySelectorAll(".json-tree details").forEach(function (node, index) {
      node.open = open || index === 0;
    });
  });
})();
