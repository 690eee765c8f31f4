// Passkeys on the hosted pages, with SimpleWebAuthn's browser library (webauthn.js, loaded
// before this file). The pages work without it: passkey forms stay hidden and password
// sign-in is a plain form. Each passkey form carries its WebAuthn options (JSON, made by
// the server with a fresh challenge) in data-options; the browser's answer goes back in the
// form's hidden `credential` field, and the server decides what happens next.
(function () {
  'use strict';
  var webauthn = window.SimpleWebAuthnBrowser;
  if (!webauthn || !webauthn.browserSupportsWebAuthn()) return;

  function show(element) {
    element.hidden = false;
  }

  function showError(form, message) {
    var slot = form.querySelector('[data-passkey-error]');
    if (!slot) return;
    slot.textContent = message;
    slot.hidden = false;
  }

  function submitWith(form, credential) {
    form.querySelector('input[name="credential"]').value = JSON.stringify(credential);
    form.submit();
  }

  function ceremony(form, extra) {
    var options = JSON.parse(form.getAttribute('data-options'));
    if (form.getAttribute('data-passkey') === 'register') return webauthn.startRegistration({ optionsJSON: options });
    return webauthn.startAuthentication(Object.assign({ optionsJSON: options }, extra));
  }

  document.querySelectorAll('[data-passkey-choice]').forEach(show);
  document.querySelectorAll('[data-passkey-unsupported]').forEach(function (note) {
    note.hidden = true;
  });

  document.querySelectorAll('form[data-passkey]').forEach(function (form) {
    show(form);
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var button = form.querySelector('button[type="submit"]');
      button.disabled = true;
      ceremony(form, {})
        .then(function (credential) {
          submitWith(form, credential);
        })
        .catch(function (error) {
          button.disabled = false;
          // AbortError: the autofill request was replaced by this one, or the page moved on.
          if (error && error.name === 'AbortError') return;
          showError(form, form.getAttribute('data-cancelled'));
        });
    });

    // Passkey autofill: the sign-in page's email field offers the person's passkeys.
    if (form.getAttribute('data-autofill') === 'true') {
      webauthn.browserSupportsWebAuthnAutofill().then(function (supported) {
        if (!supported) return;
        ceremony(form, { useBrowserAutofill: true })
          .then(function (credential) {
            submitWith(form, credential);
          })
          .catch(function () {
            // Cancelled or replaced by the button's request: nothing to say.
          });
      });
    }
  });
})();
