/* "Sync now" on the sync page: POST /api/refresh?repo=..., then swap in a fresh copy of the card.
   An admin token, when the server needs one, comes from the field of admin_token.js. */
(function () {
  "use strict";
  var POLL_MS = 4000;
  var root = document.getElementById("sync-page");
  if (!root) return;
  var admin = window.cipulseAdminToken;
  var busy = 0;

  function say(card, tone, text) {
    var message = card.querySelector("[data-sync-message]");
    message.dataset.tone = tone;
    message.textContent = text;
    message.hidden = false;
  }

  function setSyncing(card, on) {
    card.dataset.syncing = on ? "true" : "false";
    card.querySelector("[data-syncing-badge]").hidden = !on;
    card.querySelector("[data-sync-now]").disabled = on;
  }

  function cardFor(doc, repo) {
    return doc.querySelector('.sync-card[data-repo="' + CSS.escape(repo) + '"]');
  }

  // A fresh copy of the page, so the cards show what the server stored.
  function freshPage() {
    return fetch(window.location.href, { headers: { Accept: "text/html" } }).then(function (r) {
      if (!r.ok) throw new Error("status " + r.status);
      return r.text().then(function (html) {
        return new DOMParser().parseFromString(html, "text/html");
      });
    });
  }

  function replaceCard(doc, card) {
    var fresh = cardFor(doc, card.dataset.repo);
    if (!fresh) return card;
    card.replaceWith(fresh);
    return fresh;
  }

  function readBody(response) {
    return response
      .json()
      .catch(function () {
        return {};
      })
      .then(function (body) {
        return { status: response.status, body: body };
      });
  }

  function needToken(card) {
    admin.need(
      "This server needs its admin token (CIPULSE_ADMIN_TOKEN) to sync. Enter it here, then press Sync now again."
    );
    say(card, "failure", "An admin token is needed to sync: enter it above.");
  }

  function syncNow(card) {
    var repo = card.dataset.repo;
    var headers = admin.headers({ Accept: "application/json" });
    busy += 1;
    setSyncing(card, true);
    say(card, "progress", "Syncing " + repo + " with GitHub…");
    var url = root.dataset.refreshPath + "?repo=" + encodeURIComponent(repo);
    fetch(url, { method: "POST", headers: headers })
      .then(readBody)
      .then(function (answer) {
        if (answer.status === 401) {
          setSyncing(card, false);
          needToken(card);
          return;
        }
        var ok = answer.status === 200 && answer.body.success !== false;
        var text =
          answer.body.message ||
          (typeof answer.body.detail === "string" ? answer.body.detail : "") ||
          "The server answered " + answer.status + ".";
        return freshPage()
          .then(function (doc) {
            card = replaceCard(doc, card);
          })
          .catch(function () {
            setSyncing(card, false);
          })
          .then(function () {
            say(card, ok ? "success" : "failure", ok ? "Done: " + text + "." : text);
          });
      })
      .catch(function () {
        setSyncing(card, false);
        say(card, "failure", "Could not reach the cipulse server; try again.");
      })
      .finally(function () {
        busy -= 1;
      });
  }

  root.addEventListener("click", function (event) {
    var button = event.target.closest("[data-sync-now]");
    if (button && !button.disabled) syncNow(button.closest(".sync-card"));
  });

  // A scheduled sync may be running when the page opens: follow it until it ends.
  function poll() {
    if (busy || document.hidden || !root.querySelector('.sync-card[data-syncing="true"]')) return;
    freshPage()
      .then(function (doc) {
        if (busy) return;
        root.querySelectorAll(".sync-card").forEach(function (card) {
          var message = card.querySelector("[data-sync-message]");
          var fresh = replaceCard(doc, card);
          if (!message.hidden) fresh.querySelector("[data-sync-message]").replaceWith(message);
        });
      })
      .catch(function () {
        // the next tick tries again
      });
  }
  window.setInterval(poll, POLL_MS);
})();
