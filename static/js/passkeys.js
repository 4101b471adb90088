/*
 * Passkeys (WebAuthn) in the portal: the second sign-in step, a first passkey during a required
 * set-up, and adding one from the account page.
 *
 * Hand-written, no dependencies, loaded with `defer` by the pages that use it (the CSP allows
 * scripts from the portal only, none inline). The server speaks JSON: options first, then the
 * browser's answer; binary fields travel as base64url. The CSRF token goes in the X-CSRFToken
 * header. Elements marked data-passkey-* say where the URLs and token are; without a browser
 * that supports passkeys (or without this script) they stay hidden and the page says so.
 */
(function () {
  "use strict";

  // --- base64url <-> ArrayBuffer ------------------------------------------------------------

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return window.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromBase64url(text) {
    var base64 = String(text).replace(/-/g, "+").replace(/_/g, "/");
    var padded = base64 + "===".slice((base64.length + 3) % 4);
    var binary = window.atob(padded);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  // --- options from the server, answers to it ------------------------------------------------

  function descriptors(list) {
    return (list || []).map(function (item) {
      var copy = { type: item.type, id: fromBase64url(item.id) };
      if (item.transports) {
        copy.transports = item.transports;
      }
      return copy;
    });
  }

  function creationOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = fromBase64url(json.challenge);
    options.user = Object.assign({}, json.user, { id: fromBase64url(json.user.id) });
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = fromBase64url(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    return options;
  }

  function common(credential) {
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
    };
  }

  function registrationJSON(credential) {
    var answer = common(credential);
    var response = credential.response;
    answer.response = {
      clientDataJSON: toBase64url(response.clientDataJSON),
      attestationObject: toBase64url(response.attestationObject),
      transports: typeof response.getTransports === "function" ? response.getTransports() : [],
    };
    return answer;
  }

  function assertionJSON(credential) {
    var answer = common(credential);
    var response = credential.response;
    answer.response = {
      clientDataJSON: toBase64url(response.clientDataJSON),
      authenticatorData: toBase64url(response.authenticatorData),
      signature: toBase64url(response.signature),
      userHandle: response.userHandle ? toBase64url(response.userHandle) : null,
    };
    return answer;
  }

  // --- talking to the portal -------------------------------------------------------------------

  var STATUS_MESSAGES = {
    400: "This page has expired. Please reload it and try again.",
    403: "That was refused. Please reload the page and try again.",
    429: "Too many attempts. Please wait a minute and try again.",
    503: "The portal is busy. Nothing was saved: please try again in a few seconds.",
  };
  var UNKNOWN = "Something went wrong. Please try again in a moment.";

  function Problem(message, redirect, field) {
    this.message = message;
    this.redirect = redirect || null;
    this.field = field || null;
  }

  function postJSON(url, body, csrf) {
    return window
      .fetch(url, {
        method: "POST",
        credentials: "same-origin",
        referrerPolicy: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify(body),
      })
      .catch(function () {
        throw new Problem("The portal could not be reached. Check your connection and try again.");
      })
      .then(function (response) {
        var isJSON = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
        var read = isJSON
          ? response.json().catch(function () {
              return null;
            })
          : Promise.resolve(null);
        return read.then(function (data) {
          if (!response.ok) {
            var message = data && typeof data.error === "string" ? data.error : STATUS_MESSAGES[response.status];
            throw new Problem(message || UNKNOWN, data && data.redirect, data && data.field);
          }
          return data || {};
        });
      });
  }

  function browserProblem(error, creating) {
    if (error instanceof Problem) {
      return error;
    }
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "AbortError") {
      return new Problem("The passkey request was cancelled or timed out. Try again when you are ready.");
    }
    if (name === "InvalidStateError" && creating) {
      return new Problem("This passkey is registered to your account already. Use another authenticator.");
    }
    if (name === "SecurityError") {
      return new Problem("Passkeys do not work at this address. Open the portal at its usual address.");
    }
    if (name === "NotSupportedError") {
      return new Problem("This browser or authenticator cannot make a passkey the portal accepts.");
    }
    return new Problem("Your browser could not use the passkey. Please try again.");
  }

  // --- page wiring ---------------------------------------------------------------------------

  function supported() {
    return Boolean(window.PublicKeyCredential && navigator.credentials && window.fetch);
  }

  function reveal(root) {
    root.querySelectorAll("[data-passkey-unsupported]").forEach(function (note) {
      note.hidden = true;
    });
    root.querySelectorAll("[data-passkey-supported]").forEach(function (part) {
      part.hidden = false;
    });
  }

  function statusOf(root) {
    return root.querySelector("[data-passkey-status]");
  }

  function say(root, message) {
    var status = statusOf(root);
    if (status) {
      status.textContent = message || "";
    }
  }

  function busy(control, on) {
    control.disabled = on;
    control.setAttribute("aria-busy", on ? "true" : "false");
  }

  function fail(root, control, error, creating) {
    var problem = browserProblem(error, creating);
    busy(control, false);
    if (problem.redirect) {
      window.location.assign(problem.redirect);
      return;
    }
    root.querySelectorAll("[aria-invalid]").forEach(function (input) {
      input.removeAttribute("aria-invalid");
    });
    if (problem.field) {
      var input = root.querySelector('[name="' + problem.field + '"]');
      if (input) {
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
    }
    say(root, problem.message);
  }

  /* The second sign-in step: a button beside the code field. */
  function wireSignIn(root) {
    var button = root.querySelector("[data-passkey-sign-in]");
    if (!button) {
      return;
    }
    button.addEventListener("click", function () {
      var remember = document.getElementById(root.getAttribute("data-remember") || "remember");
      busy(button, true);
      say(root, "Waiting for your passkey…");
      postJSON(root.getAttribute("data-options-url"), {}, root.getAttribute("data-csrf"))
        .then(function (data) {
          return navigator.credentials.get({ publicKey: requestOptions(data.publicKey) });
        })
        .then(function (credential) {
          say(root, "Checking…");
          return postJSON(
            root.getAttribute("data-verify-url"),
            { credential: assertionJSON(credential), remember: Boolean(remember && remember.checked) },
            root.getAttribute("data-csrf")
          );
        })
        .then(function (data) {
          window.location.assign(data.redirect);
        })
        .catch(function (error) {
          fail(root, button, error, false);
        });
    });
  }

  /* A new passkey: a name (and on the account page the current password), then the browser. */
  function wireRegister(root) {
    var form = root.querySelector("form[data-passkey-register]");
    if (!form) {
      return;
    }
    var button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = {};
      form.querySelectorAll("input[name]").forEach(function (input) {
        body[input.name] = input.value;
      });
      busy(button, true);
      say(root, "Follow your browser's steps to make the passkey…");
      postJSON(root.getAttribute("data-options-url"), body, root.getAttribute("data-csrf"))
        .then(function (data) {
          return navigator.credentials.create({ publicKey: creationOptions(data.publicKey) });
        })
        .then(function (credential) {
          say(root, "Saving…");
          return postJSON(
            root.getAttribute("data-verify-url"),
            { credential: registrationJSON(credential) },
            root.getAttribute("data-csrf")
          );
        })
        .then(function (data) {
          if (data.recovery_codes && data.recovery_codes.length) {
            showCodes(root, data.recovery_codes, data.redirect);
          } else {
            window.location.assign(data.redirect);
          }
        })
        .catch(function (error) {
          fail(root, button, error, true);
        });
    });
  }

  /* A first second factor comes with recovery codes: shown once, here. */
  function showCodes(root, codes, next) {
    var box = root.querySelector("[data-passkey-codes]");
    var list = box.querySelector("ul");
    list.textContent = "";
    codes.forEach(function (code) {
      var item = document.createElement("li");
      item.textContent = code;
      list.appendChild(item);
    });
    box.querySelector("[data-passkey-continue]").setAttribute("href", next);
    root.querySelectorAll("[data-passkey-supported]").forEach(function (part) {
      part.hidden = true;
    });
    box.hidden = false;
    var heading = box.querySelector("h2, h3");
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }

  function start() {
    var roots = document.querySelectorAll("[data-passkey]");
    if (!supported()) {
      return; // the pages' notes saying passkeys need a supporting browser stay visible
    }
    roots.forEach(function (root) {
      reveal(root);
      wireSignIn(root);
      wireRegister(root);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
