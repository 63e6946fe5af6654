/* The alerts page: its buttons call the admin API (/api/alerts/...) with the token typed into
   the page (admin_token.js), then reload to show the stored result. "Send test alert" follows
   the delivery until the worker has tried it, and says how it went. */
(function () {
  "use strict";
  var root = document.getElementById("alerts-page");
  if (!root) return;
  var api = root.dataset.api;
  var admin = window.cipulseAdminToken;
  var status = document.getElementById("alerts-status");
  var NEED = "Changing alerts needs the server's admin token (CIPULSE_ADMIN_TOKEN): enter it above, then try again.";

  function say(tone, text) {
    status.dataset.tone = tone;
    status.textContent = text;
    status.hidden = false;
    status.scrollIntoView({ block: "nearest" });
  }

  function call(method, path, body) {
    var headers = admin.headers({ Accept: "application/json" });
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(api + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (response) {
      if (response.status === 401) {
        admin.need(NEED);
        throw new Error("An admin token is needed: enter it above.");
      }
      if (response.status === 204) return null;
      return response
        .json()
        .catch(function () {
          return {};
        })
        .then(function (data) {
          if (!response.ok) {
            var detail = data.message || (typeof data.detail === "string" ? data.detail : "");
            throw new Error(detail || "The server answered " + response.status + ".");
          }
          return data;
        });
    });
  }

  function wait(ms) {
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }

  function follow(deliveryId, tries) {
    return call("GET", "/deliveries/" + deliveryId).then(function (d) {
      if (d.state !== "pending" || d.attempts > 0 || tries <= 1) return d;
      return wait(400).then(function () {
        return follow(deliveryId, tries - 1);
      });
    });
  }

  function testChannel(item, button) {
    var out = item.querySelector("[data-test-result]");
    var name = item.dataset.name;
    button.disabled = true;
    out.hidden = false;
    out.dataset.tone = "progress";
    out.textContent = "Sending a test alert to " + name + "…";
    call("POST", "/channels/" + item.dataset.channel + "/test")
      .then(function (queued) {
        return follow(queued.delivery_id, 40);
      })
      .then(function (d) {
        if (d.state === "sent") {
          out.dataset.tone = "success";
          out.textContent = "Test alert delivered to " + name + ".";
        } else if (d.state === "pending" && d.attempts === 0) {
          out.dataset.tone = "progress";
          out.textContent = "Queued; the worker has not tried it yet.";
        } else {
          out.dataset.tone = "failure";
          out.textContent = "Not delivered: " + (d.last_error || d.state);
        }
      })
      .catch(function (error) {
        out.dataset.tone = "failure";
        out.textContent = error.message;
      })
      .then(function () {
        button.disabled = false;
      });
  }

  function act(button) {
    var action = button.dataset.action;
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    var channel = button.closest("[data-channel]");
    var rule = button.closest("[data-rule]");
    var delivery = button.closest("[data-delivery]");
    if (channel && action === "test") return testChannel(channel, button);
    var path;
    if (channel) path = "/channels/" + channel.dataset.channel;
    else if (rule) path = "/rules/" + rule.dataset.rule;
    else if (delivery) path = "/deliveries/" + delivery.dataset.delivery;
    else return;
    var method = action === "delete" ? "DELETE" : "POST";
    if (action !== "delete") path += "/" + action;
    button.disabled = true;
    call(method, path)
      .then(function () {
        location.reload();
      })
      .catch(function (error) {
        button.disabled = false;
        say("failure", error.message);
      });
  }

  root.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (button && !button.disabled) act(button);
  });

  function list(text) {
    return (text || "")
      .split(",")
      .map(function (s) {
        return s.trim();
      })
      .filter(Boolean);
  }

  var channelForm = document.getElementById("add-channel");
  function showKindFields() {
    var kind = channelForm.elements.kind.value;
    channelForm.querySelectorAll("[data-for]").forEach(function (el) {
      el.hidden = el.dataset.for.split(" ").indexOf(kind) < 0;
    });
  }
  channelForm.elements.kind.addEventListener("change", showKindFields);
  showKindFields();
  channelForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var f = channelForm.elements;
    var kind = f.kind.value;
    var config = {};
    if (kind === "email") config.to = list(f.to.value);
    if (kind === "slack" || kind === "teams" || kind === "webhook") config.url = f.url.value.trim();
    if (kind === "webhook" && f.secret.value) config.secret = f.secret.value;
    call("POST", "/channels", { name: f.name.value.trim(), kind: kind, config: config })
      .then(function () {
        location.reload();
      })
      .catch(function (error) {
        say("failure", "The channel was not added: " + error.message);
      });
  });

  var ruleForm = document.getElementById("add-rule");
  ruleForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var f = ruleForm.elements;
    var params = {};
    if (f.params.value.trim()) {
      try {
        params = JSON.parse(f.params.value);
      } catch (e) {
        say("failure", "The parameters are not valid JSON: " + e.message);
        return;
      }
    }
    var body = {
      name: f.name.value.trim(),
      kind: f.kind.value,
      params: params,
      channels: list(f.channels.value),
    };
    if (f.remind_after_minutes.value !== "") body.remind_after_minutes = Number(f.remind_after_minutes.value);
    call("POST", "/rules", body)
      .then(function () {
        location.reload();
      })
      .catch(function (error) {
        say("failure", "The rule was not added: " + error.message);
      });
  });
})();
