// The job-log viewer: a #L<n> link to a line on another page goes to that page, and the page
// scrolls to its line in focus (the first error, or ?line=). Everything else is plain HTML.
(function () {
  "use strict";
  var page = document.getElementById("log-page");
  if (!page) return;

  function openFolds(el) {
    for (var node = el; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") node.open = true;
    }
  }

  function show(el) {
    openFolds(el);
    el.scrollIntoView({ block: "center" });
  }

  function followHash() {
    var match = /^#L(\d+)$/.exec(location.hash);
    if (!match) return false;
    var el = document.getElementById("L" + match[1]);
    if (el) {
      show(el);
      return true;
    }
    // the line is on another page: let the server find it
    var params = new URLSearchParams(location.search);
    if (params.get("line") === match[1]) return false; // already asked: no such line
    params.delete("page");
    params.set("line", match[1]);
    location.replace("?" + params.toString() + location.hash);
    return true;
  }

  // "Fetch this log now" on a page without a stored log: ask, then show the progress page.
  var fetchButton = page.querySelector("[data-fetch-log]");
  if (fetchButton) {
    var note = page.querySelector("[data-fetch-note]");
    var admin = window.cipulseAdminToken;
    var ask = function () {
      fetchButton.disabled = true;
      note.textContent = "Asking…";
      fetch(fetchButton.getAttribute("data-fetch-log"), {
        method: "POST",
        headers: admin ? admin.headers() : {},
      })
        .then(function (response) {
          if (response.status === 401 && admin) {
            admin.need("Fetching a log needs the server's admin token (CIPULSE_ADMIN_TOKEN).");
            note.textContent = "";
            return;
          }
          if (!response.ok) {
            return response.json().then(function (body) {
              note.textContent = "Not fetched: " + (body.detail || response.status);
            });
          }
          location.reload();
        })
        .catch(function () {
          note.textContent = "The server could not be reached.";
        })
        .finally(function () {
          fetchButton.disabled = false;
        });
    };
    fetchButton.addEventListener("click", ask);
    if (admin) admin.onSaved(ask);
  }

  // With a search, mark its text in the lines of this page too (text nodes only, no HTML).
  var query = new URLSearchParams(location.search).get("q");
  if (query) {
    var needle = query.toLowerCase();
    var walker = document.createTreeWalker(
      page.querySelector(".log") || page,
      NodeFilter.SHOW_TEXT,
      {
        acceptNode: function (node) {
          var inText = node.parentElement && node.parentElement.closest(".lt");
          return inText && node.nodeValue.toLowerCase().indexOf(needle) !== -1
            ? NodeFilter.FILTER_ACCEPT
            : NodeFilter.FILTER_SKIP;
        },
      }
    );
    var found = [];
    while (walker.nextNode()) found.push(walker.currentNode);
    found.forEach(function (node) {
      var text = node.nodeValue;
      var lower = text.toLowerCase();
      var parts = document.createDocumentFragment();
      var at = 0;
      var hit = lower.indexOf(needle);
      while (hit !== -1) {
        parts.appendChild(document.createTextNode(text.slice(at, hit)));
        var mark = document.createElement("mark");
        mark.textContent = text.slice(hit, hit + needle.length);
        parts.appendChild(mark);
        at = hit + needle.length;
        hit = lower.indexOf(needle, at);
      }
      parts.appendChild(document.createTextNode(text.slice(at)));
      node.parentNode.replaceChild(parts, node);
    });
  }

  window.addEventListener("hashchange", followHash);
  if (!followHash()) {
    var focus = page.getAttribute("data-focus");
    var el = focus && document.getElementById("L" + focus);
    if (el) show(el);
  }
})();
