/* The jobs page works without this script (filters have an Apply button, sorting is links).
   With it, choosing a repository or a window applies at once; a new repository starts on all
   branches, since a branch name rarely means the same thing in another repository. */
(function () {
  "use strict";
  var form = document.querySelector("form[data-filters]");
  if (!form) return;

  form.addEventListener("change", function (event) {
    var field = event.target;
    if (!field.matches("[data-autosubmit]")) return;
    if (field.matches("[data-resets-branch]")) form.elements.branch.value = "";
    form.requestSubmit();
  });

  // An empty branch means all branches: leave it out of the URL rather than send "branch=".
  form.addEventListener("submit", function () {
    var branch = form.elements.branch;
    branch.value = branch.value.trim();
    if (!branch.value) branch.disabled = true;
  });

  // Coming back with the back button shows the page from cache with the field still disabled.
  window.addEventListener("pageshow", function () {
    form.elements.branch.disabled = false;
  });
})();
