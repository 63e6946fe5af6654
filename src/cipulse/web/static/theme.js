/* Light/dark theme: follows the system until the user picks one; the pick is kept in
   localStorage. Loaded in <head> so that the page never paints in the wrong theme. */
(function () {
  "use strict";
  var KEY = "cipulse-theme";
  var root = document.documentElement;
  var system = window.matchMedia("(prefers-color-scheme: dark)");

  function stored() {
    try {
      var value = localStorage.getItem(KEY);
      return value === "light" || value === "dark" ? value : null;
    } catch (e) {
      return null; // storage may be blocked; the system theme still applies
    }
  }

  function set(theme) {
    if (root.dataset.theme === theme) return;
    root.dataset.theme = theme;
    document.dispatchEvent(new CustomEvent("cipulse:theme", { detail: { theme: theme } }));
  }

  function apply() {
    set(stored() || (system.matches ? "dark" : "light"));
  }

  apply();
  system.addEventListener("change", apply);
  window.addEventListener("storage", function (event) {
    if (event.key === KEY) apply(); // another tab switched theme
  });
  document.addEventListener("click", function (event) {
    if (!event.target.closest("[data-theme-toggle]")) return;
    var next = root.dataset.theme === "dark" ? "light" : "dark";
    try {
      localStorage.setItem(KEY, next);
    } catch (e) {
      // not remembered, but still switched for this page
    }
    set(next);
  });
})();
