/* The admin token of the sync and webhooks pages: typed once per tab, kept in sessionStorage,
   and sent only if the user gave one. Pages call headers() for their requests and need() when
   the server answered 401; onSaved() hears of a token just entered. */
window.cipulseAdminToken = (function () {
  "use strict";
  var KEY = "cipulse-admin-token";
  var form = document.getElementById("admin-token");
  var listeners = [];

  function stored() {
    try {
      return sessionStorage.getItem(KEY) || "";
    } catch (e) {
      return "";
    }
  }

  var pageToken = stored();

  function store(value) {
    try {
      if (value) sessionStorage.setItem(KEY, value);
      else sessionStorage.removeItem(KEY);
    } catch (e) {
      // storage blocked: the token works for this page only
    }
    showState();
  }

  function token() {
    return stored() || pageToken;
  }

  function showState() {
    if (!form) return;
    var has = Boolean(token());
    form.querySelector("[data-forget-token]").hidden = !has;
    form.elements.token.placeholder = has ? "saved for this tab" : "CIPULSE_ADMIN_TOKEN";
  }

  function headers(extra) {
    var all = Object.assign({}, extra || {});
    var value = token();
    if (value) all.Authorization = "Bearer " + value;
    return all;
  }

  // The server refused: show the field, say why, and put the cursor in it.
  function need(note) {
    if (!form) return;
    form.hidden = false;
    form.setAttribute("data-needed", "");
    form.querySelector("[data-token-note]").textContent = note;
    form.elements.token.focus();
  }

  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var value = form.elements.token.value.trim();
      pageToken = value;
      store(value);
      form.elements.token.value = "";
      form.removeAttribute("data-needed");
      listeners.forEach(function (listener) {
        listener(value);
      });
    });
    form.querySelector("[data-forget-token]").addEventListener("click", function () {
      pageToken = "";
      store("");
    });
    if (stored()) form.hidden = false;
    showState();
  }

  return {
    token: token,
    headers: headers,
    need: need,
    onSaved: function (listener) {
      listeners.push(listener);
    },
  };
})();
