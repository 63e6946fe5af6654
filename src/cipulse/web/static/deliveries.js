/* The webhooks page. "Replay" posts /api/webhooks/deliveries/{id}/replay, then follows the
   delivery until the worker has tried it again, swapping in its fresh rows from the server (the
   page's own URL answers with only the table for HX-Request/HX-Target: deliveries).
   When the server has an admin token, the table itself is fetched that way with the token typed
   into the page (admin_token.js). */
(function () {
  "use strict";
  var root = document.getElementById("webhooks-page");
  if (!root) return;
  var admin = window.cipulseAdminToken;
  var box = document.getElementById("deliveries");
  var status = document.getElementById("replay-status");
  var FOLLOW_MS = 400;
  var FOLLOW_TRIES = 25; // about ten seconds; the worker usually answers at once
  var NEED_TO_SEE =
    "This server keeps its webhook deliveries for admins: enter its admin token (CIPULSE_ADMIN_TOKEN) to see and replay them.";
  var NEED_TO_REPLAY =
    "Replaying needs the server's admin token (CIPULSE_ADMIN_TOKEN). Enter it here, then press Replay again.";

  function Refused(status) {
    this.status = status;
  }

  function say(tone, text) {
    status.dataset.tone = tone;
    status.textContent = text;
    status.hidden = false;
  }

  // The table, or one delivery's rows, from the server.
  function fragment(query) {
    var url = root.dataset.pagePath + (query ? "?" + query : "");
    var headers = admin.headers({ "HX-Request": "true", "HX-Target": "deliveries" });
    return fetch(url, { headers: headers }).then(function (response) {
      if (!response.ok) throw new Refused(response.status);
      return response.text().then(function (html) {
        return new DOMParser().parseFromString(html, "text/html");
      });
    });
  }

  function loadTable() {
    fragment(location.search.slice(1))
      .then(function (doc) {
        box.replaceChildren.apply(box, Array.from(doc.body.childNodes));
        box.removeAttribute("data-locked");
      })
      .catch(function (error) {
        if (error instanceof Refused && error.status === 401) admin.need(NEED_TO_SEE);
        else say("failure", "Could not load the deliveries; reload the page to try again.");
      });
  }

  if (box.hasAttribute("data-locked") && admin.token()) loadTable();
  admin.onSaved(function () {
    if (box.hasAttribute("data-locked")) loadTable();
  });

  function rowOf(id) {
    return box.querySelector('tbody.delivery[data-delivery="' + CSS.escape(id) + '"]');
  }

  function refreshRow(id) {
    return fragment("delivery=" + encodeURIComponent(id)).then(function (doc) {
      var fresh = doc.querySelector('tbody.delivery[data-delivery="' + CSS.escape(id) + '"]');
      var row = rowOf(id);
      if (fresh && row) row.replaceWith(fresh);
      return fresh;
    });
  }

  function wait(ms) {
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }

  // Replay sets the attempts back to 0; the worker's next try counts one.
  function follow(id, tries) {
    return refreshRow(id).then(function (fresh) {
      var settled = !fresh || fresh.dataset.state !== "pending" || fresh.dataset.attempts !== "0";
      if (settled || tries <= 1) return fresh;
      return wait(FOLLOW_MS).then(function () {
        return follow(id, tries - 1);
      });
    });
  }

  function outcome(fresh, name) {
    if (!fresh) return say("failure", name + " is gone from the inbox.");
    var state = fresh.dataset.state;
    if (state === "processed" || state === "ignored") {
      return say("success", name + " replayed: " + state + ".");
    }
    if (state === "pending" && fresh.dataset.attempts === "0") {
      return say("progress", name + " is queued again; the worker has not taken it yet.");
    }
    say("failure", name + " replayed, and failed again: see its error below.");
  }

  function replay(button) {
    var row = button.closest("tbody.delivery");
    var id = row.dataset.delivery;
    var name = "Delivery " + row.dataset.guid;
    button.disabled = true;
    button.textContent = "Replaying…";
    function reset() {
      button.disabled = false;
      button.textContent = "Replay";
    }
    fetch(button.dataset.replay, {
      method: "POST",
      headers: admin.headers({ Accept: "application/json" }),
    })
      .then(function (response) {
        if (response.status === 401) {
          reset();
          admin.need(NEED_TO_REPLAY);
          say("failure", "An admin token is needed to replay: enter it above.");
          return null;
        }
        if (!response.ok) {
          reset();
          return response
            .json()
            .catch(function () {
              return {};
            })
            .then(function (body) {
              var detail = typeof body.detail === "string" ? body.detail : "";
              say("failure", detail || "The server answered " + response.status + ".");
            });
        }
        say("progress", name + " is queued again…");
        return follow(id, FOLLOW_TRIES).then(function (fresh) {
          outcome(fresh, name);
        });
      })
      .catch(function () {
        reset();
        say("failure", "Could not reach the cipulse server; try again.");
      });
  }

  box.addEventListener("click", function (event) {
    var button = event.target.closest("[data-replay]");
    if (button && !button.disabled) replay(button);
  });
})();
