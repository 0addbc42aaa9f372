// Demo checkout: create an order with POST /orders and follow it with GET /orders/{outTradeNo}.
// Plain browser JavaScript, no build step. window.DEMO_CONFIG comes from /config.js.
/* global window, document, location, crypto, fetch, setTimeout, clearTimeout */
(function () {
  'use strict';

  var config = window.DEMO_CONFIG || { apiBase: '', apiUrl: '', emulatorUrl: '' };
  var POLL_MS = 1500;
  var TERMINAL = { PAID: true, CLOSED: true, FAILED: true };

  var $ = function (id) { return document.getElementById(id); };
  var form = $('order-form');
  var amountInput = $('amount');
  var payButton = $('pay-button');
  var formError = $('form-error');
  var result = $('result');

  /** The current order's poller; a new order or "New order" stops the previous one. */
  var poll = null;

  $('api-url').textContent = config.apiUrl || location.origin;
  $('emulator-url').textContent = config.emulatorUrl || '(not configured)';

  /** Yuan as typed ("1", "1.5", "1.50") to whole fen, or null; never through floating point. */
  function toFen(text) {
    var match = /^\s*(\d{1,7})(?:\.(\d{0,2}))?\s*$/.exec(text);
    if (!match) return null;
    var fen = Number(match[1]) * 100 + Number(((match[2] || '') + '00').slice(0, 2));
    return fen >= 1 ? fen : null;
  }

  function yuan(fen) {
    return '¥' + Math.floor(fen / 100) + '.' + String(fen % 100).padStart(2, '0');
  }

  function localTime(iso) {
    if (!iso) return '';
    var date = new Date(iso);
    return isNaN(date.getTime()) ? iso : date.toLocaleString();
  }

  function selectedType() {
    return form.querySelector('input[name="tradeType"]:checked').value;
  }

  function refreshForm() {
    var fen = toFen(amountInput.value);
    $('amount-fen').textContent = fen === null ? '–' : String(fen);
    payButton.textContent = fen === null ? 'Pay' : 'Pay ' + yuan(fen);
    $('openid-field').hidden = selectedType() !== 'JSAPI';
    Array.prototype.forEach.call(document.querySelectorAll('.chip'), function (chip) {
      chip.setAttribute('aria-pressed', String(toFen(chip.dataset.amount) === fen));
    });
  }

  function showError(message) {
    formError.textContent = message;
    formError.hidden = !message;
  }

  function simulatorUrl(params) {
    if (!config.emulatorUrl) return null;
    var query = Object.keys(params).map(function (key) {
      return encodeURIComponent(key) + '=' + encodeURIComponent(params[key]);
    }).join('&');
    return config.emulatorUrl + '/__sim/scan?' + query;
  }

  function requestBody(fen) {
    var type = selectedType();
    var body = {
      tradeType: type,
      totalFee: fen,
      description: $('description').value.trim(),
      // One key per press of Pay: a retried request cannot create a second order.
      idempotencyKey: (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).slice(0, 64),
    };
    if (type === 'JSAPI') body.openid = $('openid').value.trim();
    if (type === 'NATIVE') body.productId = 'demo-sku-1';
    if (type === 'MWEB') {
      body.sceneInfo = { h5_info: { type: 'Wap', wap_url: location.origin, wap_name: 'Demo shop' } };
    }
    return body;
  }

  async function callApi(method, path, body) {
    var response = await fetch(config.apiBase + path, {
      method: method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    var data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      var error = (data && data.error) || {};
      var message = error.message || 'the API answered HTTP ' + response.status;
      throw new Error(message);
    }
    return data;
  }

  function setStatus(order) {
    var status = order.status;
    var badge = $('status');
    badge.textContent = status;
    badge.dataset.status = status;
    var paid = status === 'PAID';
    $('waiting').hidden = status !== 'PENDING';
    $('paid-banner').hidden = !paid;
    $('paid-row').hidden = !order.paidAt;
    $('paid-at').textContent = localTime(order.paidAt);
    $('transaction-row').hidden = !order.transactionId;
    $('transaction-id').textContent = order.transactionId || '';
    result.dataset.status = status;
    var ended = status === 'CLOSED' || status === 'FAILED';
    $('ended-banner').hidden = !ended;
    $('ended-banner').textContent = status === 'CLOSED'
      ? 'This order expired unpaid and is closed.'
      : 'WeChat Pay refused this order.';
    if (TERMINAL[status]) {
      // Nothing left to pay: the QR code and the payment parameters go.
      ['NATIVE', 'JSAPI', 'MWEB', 'APP'].forEach(function (type) { $('pay-' + type).hidden = true; });
      $('simulate').hidden = true;
    }
  }

  function showOrder(order, tradeType) {
    ['NATIVE', 'JSAPI', 'MWEB', 'APP'].forEach(function (type) {
      $('pay-' + type).hidden = type !== tradeType;
    });
    $('out-trade-no').textContent = order.outTradeNo;
    $('result-amount').textContent = yuan(order.totalFee);
    $('expires-at').textContent = localTime(order.expiresAt);
    var pay = order.pay;
    var simulate = simulatorUrl({ out_trade_no: order.outTradeNo });
    if (tradeType === 'NATIVE') {
      $('qr').src = pay.qrCode;
      $('code-url').textContent = pay.codeUrl;
      var scan = simulatorUrl({ code_url: pay.codeUrl });
      $('scan-link').hidden = !scan;
      if (scan) $('scan-link').href = scan;
    } else if (tradeType === 'JSAPI') {
      $('jsapi-params').textContent = JSON.stringify(pay, null, 2);
    } else if (tradeType === 'MWEB') {
      $('mweb-link').href = pay.mwebUrl;
      $('mweb-url').textContent = pay.mwebUrl;
    } else {
      $('app-params').textContent = JSON.stringify(pay, null, 2);
    }
    // NATIVE has its own scan link; the others pay inside WeChat, which the emulator stands in for.
    $('simulate').hidden = tradeType === 'NATIVE' || !simulate;
    if (simulate) $('simulate-link').href = simulate;
    setStatus(order);
    form.closest('.card').classList.add('done');
    result.hidden = false;
    if (window.matchMedia('(max-width: 759px)').matches) window.scrollTo(0, 0);
  }

  function follow(outTradeNo) {
    var state = { stopped: false, timer: null };
    async function tick() {
      if (state.stopped) return;
      try {
        var order = await callApi('GET', '/orders/' + encodeURIComponent(outTradeNo));
        if (state.stopped) return;
        setStatus(order);
        $('waiting').textContent = 'Waiting for payment…';
        if (TERMINAL[order.status]) return;
      } catch (error) {
        if (state.stopped) return;
        $('waiting').textContent = 'Could not check the order (' + error.message + '); retrying…';
      }
      state.timer = setTimeout(tick, POLL_MS);
    }
    state.timer = setTimeout(tick, POLL_MS);
    return {
      stop: function () {
        state.stopped = true;
        clearTimeout(state.timer);
      },
    };
  }

  function stopFollowing() {
    if (poll) poll.stop();
    poll = null;
  }

  form.addEventListener('input', refreshForm);
  form.addEventListener('change', refreshForm);
  Array.prototype.forEach.call(document.querySelectorAll('.chip'), function (chip) {
    chip.addEventListener('click', function () {
      amountInput.value = chip.dataset.amount;
      refreshForm();
    });
  });

  form.addEventListener('submit', async function (event) {
    event.preventDefault();
    showError('');
    var fen = toFen(amountInput.value);
    if (fen === null) {
      showError('Enter an amount of at least 0.01 yuan, with at most two decimals.');
      amountInput.focus();
      return;
    }
    if (!$('description').value.trim()) {
      showError('Enter a description.');
      $('description').focus();
      return;
    }
    stopFollowing();
    var body = requestBody(fen);
    payButton.disabled = true;
    payButton.textContent = 'Creating order…';
    try {
      var order = await callApi('POST', '/orders', body);
      if (!order || !order.outTradeNo || !order.pay) throw new Error('unexpected answer ' + JSON.stringify(order));
      showOrder(order, body.tradeType);
      poll = follow(order.outTradeNo);
    } catch (error) {
      showError('Could not create the order: ' + error.message);
    } finally {
      payButton.disabled = false;
      refreshForm();
    }
  });

  $('new-order').addEventListener('click', function () {
    stopFollowing();
    result.hidden = true;
    form.closest('.card').classList.remove('done');
    window.scrollTo({ top: 0, behavior: 'smooth' });
    amountInput.focus();
  });

  refreshForm();
})();
