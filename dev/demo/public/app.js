// Demo checkout: a cart of the products on sale (GET /products, from the merchant's web server),
// ordered with POST /orders { items } and followed with GET /orders/{outTradeNo}. The server prices
// the order: the page shows an estimate in the cart, and on the order the amount the server answered.
// In mini-program mode the payer logs in first (wx.login simulated by the emulator, its code exchanged at
// POST /auth/miniprogram) and the order is sent with the session token, which gives its app and openid.
// The order's events (GET /events?outTradeNo=) are listed while the page follows it.
// Plain browser JavaScript, no build step. window.DEMO_CONFIG comes from /config.js.
/* global window, document, location, crypto, fetch, setTimeout, clearTimeout */
(function () {
  'use strict';

  var config = window.DEMO_CONFIG || { apiBase: '', apiUrl: '', emulatorUrl: '', miniProgramAppId: null };
  var POLL_MS = 1500;
  var TERMINAL = { PAID: true, CLOSED: true, FAILED: true };
  // The event a final state publishes, a moment after the state is written: the page looks for it a
  // few more times once the order has ended.
  var FINAL_EVENT = { PAID: 'Order Paid', CLOSED: 'Order Closed', FAILED: 'Order Failed' };
  var FINAL_EVENT_TRIES = 10;
  // A session is used for an order only while it has at least this long left.
  var SESSION_MARGIN_MS = 60 * 1000;
  // What POST /orders accepts: whole quantities 1 to 999, at most 20 lines.
  var MAX_QUANTITY = 999;
  var MAX_LINES = 20;

  var $ = function (id) {
    return document.getElementById(id);
  };
  var form = $('order-form');
  var cart = $('cart');
  var payButton = $('pay-button');
  var formError = $('form-error');
  var result = $('result');

  /** The current order's poller; a new order or "New order" stops the previous one. */
  var poll = null;
  /** The products on sale, `{ sku, name, priceFen }`, in the order the server lists them. */
  var products = [];
  /** Quantity per sku, 0 to 999. */
  var quantities = {};
  /** True while POST /orders is under way. */
  var creating = false;
  /**
   * The mini-program payer's session, `{ token, expiresAt, appId, openid }`: in this page's memory
   * only. The token is a credential: it never goes into the page, a log or storage.
   */
  var session = null;

  $('api-url').textContent = config.apiUrl || location.origin;
  $('emulator-url').textContent = config.emulatorUrl || '(not configured)';

  function yuan(fen) {
    return '¥' + Math.floor(fen / 100) + '.' + String(fen % 100).padStart(2, '0');
  }

  function localTime(iso) {
    if (!iso) return '';
    var date = new Date(iso);
    return isNaN(date.getTime()) ? iso : date.toLocaleString();
  }

  /** The "Pay with" choice: a trade type, or MINIPROGRAM (a JSAPI order of a logged-in payer). */
  function selectedChoice() {
    return form.querySelector('input[name="tradeType"]:checked').value;
  }

  function tradeTypeOf(choice) {
    return choice === 'MINIPROGRAM' ? 'JSAPI' : choice;
  }

  /** A quantity as typed or stepped to a whole number from 0 to 999 ("" and nonsense are 0). */
  function toQuantity(value) {
    var number = Math.trunc(Number(value));
    if (!isFinite(number) || number < 0) return 0;
    return Math.min(number, MAX_QUANTITY);
  }

  /** The cart's lines with a quantity, as POST /orders takes them, with the estimate. */
  function cartLines() {
    var lines = [];
    var estimate = 0;
    var count = 0;
    products.forEach(function (product) {
      var quantity = quantities[product.sku] || 0;
      if (quantity < 1) return;
      lines.push({ sku: product.sku, quantity: quantity });
      estimate += product.priceFen * quantity;
      count += quantity;
    });
    return { items: lines, estimate: estimate, count: count };
  }

  function refreshForm() {
    var lines = cartLines();
    var hasItems = lines.items.length > 0;
    $('estimate').textContent = yuan(lines.estimate);
    $('cart-count').textContent = !hasItems
      ? 'Your cart is empty'
      : lines.items.length > MAX_LINES
        ? lines.items.length + ' products: an order takes at most ' + MAX_LINES
        : lines.count + (lines.count === 1 ? ' item' : ' items');
    payButton.disabled = creating || !hasItems || lines.items.length > MAX_LINES;
    payButton.setAttribute('aria-busy', String(creating));
    if (!creating) payButton.textContent = hasItems ? 'Pay ' + yuan(lines.estimate) : 'Pay';
    $('openid-field').hidden = selectedChoice() !== 'JSAPI';
    $('miniprogram-field').hidden = selectedChoice() !== 'MINIPROGRAM';
    Array.prototype.forEach.call(cart.querySelectorAll('.product'), function (row) {
      var quantity = quantities[row.dataset.sku] || 0;
      row.classList.toggle('in-cart', quantity > 0);
      row.querySelector('[data-step="-1"]').disabled = quantity <= 0;
      row.querySelector('[data-step="1"]').disabled = quantity >= MAX_QUANTITY;
      var input = row.querySelector('input');
      // Leave what the person is typing alone; show the number once they move on.
      if (document.activeElement !== input && input.value !== String(quantity)) input.value = String(quantity);
    });
  }

  function setQuantity(sku, quantity, input) {
    quantities[sku] = toQuantity(quantity);
    if (input) input.value = String(quantities[sku]);
    refreshForm();
  }

  function stepButton(step, text, label) {
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'step';
    button.dataset.step = String(step);
    button.textContent = text;
    button.setAttribute('aria-label', label);
    return button;
  }

  /** One row of the cart: name, price and a 0–999 stepper, built with DOM calls (names are text). */
  function productRow(product, index) {
    var row = document.createElement('li');
    row.className = 'product';
    row.dataset.sku = product.sku;
    var id = 'qty-' + index;

    var info = document.createElement('div');
    info.className = 'product-info';
    var name = document.createElement('span');
    name.className = 'product-name';
    name.textContent = product.name;
    var price = document.createElement('span');
    price.className = 'product-price';
    price.textContent = yuan(product.priceFen);
    info.append(name, price);

    var stepper = document.createElement('div');
    stepper.className = 'stepper';
    var label = document.createElement('label');
    label.className = 'visually-hidden';
    label.htmlFor = id;
    label.textContent = 'Quantity of ' + product.name;
    var less = stepButton(-1, '−', 'One less ' + product.name);
    var input = document.createElement('input');
    input.type = 'number';
    input.id = id;
    input.name = 'quantity-' + product.sku;
    input.min = '0';
    input.max = String(MAX_QUANTITY);
    input.step = '1';
    input.inputMode = 'numeric';
    input.value = String(quantities[product.sku] || 0);
    var more = stepButton(1, '+', 'One more ' + product.name);
    stepper.append(label, less, input, more);

    [less, more].forEach(function (button) {
      button.addEventListener('click', function () {
        setQuantity(product.sku, (quantities[product.sku] || 0) + Number(button.dataset.step), input);
      });
    });
    input.addEventListener('input', function () {
      quantities[product.sku] = toQuantity(input.value);
      if (Number(input.value) > MAX_QUANTITY) input.value = String(MAX_QUANTITY);
    });
    input.addEventListener('change', function () {
      setQuantity(product.sku, input.value, input);
    });
    input.addEventListener('blur', function () {
      setQuantity(product.sku, input.value, input);
    });
    input.addEventListener('focus', function () {
      input.select();
    });

    row.append(info, stepper);
    return row;
  }

  function renderCart() {
    cart.replaceChildren.apply(cart, products.map(productRow));
    cart.hidden = products.length === 0;
    var status = $('products-status');
    status.hidden = products.length > 0;
    status.textContent = 'No products are for sale right now.';
    refreshForm();
  }

  /** GET /products from this page's own server, which asks the catalog with the merchant's token. */
  async function loadProducts() {
    $('products-error').hidden = true;
    $('products-status').hidden = false;
    $('products-status').textContent = 'Loading the products…';
    try {
      var data = await callApi('GET', '/products', undefined, { base: '' });
      if (!data || !Array.isArray(data.products)) throw new Error('unexpected answer');
      products = data.products;
      var onSale = {};
      products.forEach(function (product) {
        onSale[product.sku] = quantities[product.sku] || 0;
      });
      // A product no longer on sale leaves the cart.
      quantities = onSale;
      renderCart();
    } catch (error) {
      $('products-status').hidden = true;
      $('products-error-text').textContent = 'Could not load the products: ' + error.message;
      $('products-error').hidden = false;
    }
  }

  function emptyCart() {
    Object.keys(quantities).forEach(function (sku) {
      quantities[sku] = 0;
    });
    refreshForm();
  }

  function showError(message) {
    formError.textContent = message;
    formError.hidden = !message;
  }

  function simulatorUrl(params) {
    if (!config.emulatorUrl) return null;
    var query = Object.keys(params)
      .map(function (key) {
        return encodeURIComponent(key) + '=' + encodeURIComponent(params[key]);
      })
      .join('&');
    return config.emulatorUrl + '/__sim/scan?' + query;
  }

  function requestBody(items, choice) {
    var type = tradeTypeOf(choice);
    var body = {
      tradeType: type,
      items: items,
      // One key per press of Pay: a retried request cannot create a second order.
      idempotencyKey: (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).slice(0, 64),
    };
    // A mini-program payer's openid (and app) come from the session token, never from the body.
    if (choice === 'JSAPI') body.openid = $('openid').value.trim();
    if (type === 'MWEB') {
      body.sceneInfo = { h5_info: { type: 'Wap', wap_url: location.origin, wap_name: 'Demo shop' } };
    }
    return body;
  }

  /**
   * Calls the API (through this page's server by default, `options.base` ''), JSON in and out;
   * `options.token` is a payer's session token, sent as `Authorization: Bearer`. A refusal is an
   * Error with the answer's message, its HTTP status and the field it names.
   */
  async function callApi(method, path, body, options) {
    var base = options && options.base !== undefined ? options.base : config.apiBase;
    var headers = body ? { 'content-type': 'application/json' } : {};
    if (options && options.token) headers.authorization = 'Bearer ' + options.token;
    var response = await fetch(base + path, {
      method: method,
      headers: headers,
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
      var failure = new Error(error.message || 'the server answered HTTP ' + response.status);
      failure.status = response.status;
      failure.field = error.field;
      throw failure;
    }
    return data;
  }

  function showPayer() {
    $('payer-none').hidden = Boolean(session);
    $('payer').hidden = !session;
    $('payer-app').textContent = session ? session.appId : '';
    $('payer-openid').textContent = session ? session.openid : '';
  }

  /**
   * The mini-program payer's session: the one in memory while it has time left, else a new login.
   * wx.login() is simulated by the emulator (`POST /__sim/login` through this page's server), which
   * answers the code and, for this demo, the openid WeChat will give for it.
   */
  async function miniProgramSession() {
    if (session && Date.parse(session.expiresAt) - Date.now() > SESSION_MARGIN_MS) return session;
    forgetSession();
    var appId = config.miniProgramAppId;
    var login = await callApi('POST', '/__sim/login', { appId: appId }, { base: '' });
    if (!login || !login.code) throw new Error('wx.login gave no code');
    var issued = await callApi('POST', '/auth/miniprogram', { code: login.code, appId: appId });
    if (!issued || !issued.token) throw new Error('POST /auth/miniprogram answered no session token');
    session = { token: issued.token, expiresAt: issued.expiresAt, appId: appId, openid: login.openid };
    showPayer();
    return session;
  }

  function forgetSession() {
    session = null;
    showPayer();
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
    $('ended-banner').textContent = status === 'CLOSED' ? 'This order expired unpaid and is closed.' : 'WeChat Pay refused this order.';
    if (paid && result.dataset.paidOrder !== order.outTradeNo) {
      // Bought: the cart starts again empty. An unpaid order leaves it as it was, to try again.
      result.dataset.paidOrder = order.outTradeNo;
      emptyCart();
    }
    if (TERMINAL[status]) {
      // Nothing left to pay: the QR code and the payment parameters go.
      ['NATIVE', 'JSAPI', 'MWEB', 'APP'].forEach(function (type) {
        $('pay-' + type).hidden = true;
      });
      $('simulate').hidden = true;
    }
  }

  function showOrder(order, tradeType, estimate, payer) {
    ['NATIVE', 'JSAPI', 'MWEB', 'APP'].forEach(function (type) {
      $('pay-' + type).hidden = type !== tradeType;
    });
    $('payer-row').hidden = !payer;
    $('order-openid').textContent = payer ? payer.openid : '';
    showEvents([]);
    $('out-trade-no').textContent = order.outTradeNo;
    // What the server priced, never the page's estimate.
    $('result-amount').textContent = yuan(order.totalFee);
    $('result-description').textContent = order.description || '';
    $('price-note').hidden = order.totalFee === estimate;
    $('price-note').textContent =
      "The catalog's prices changed since the cart was filled (estimate " +
      yuan(estimate) +
      '); the amount above is what this order costs.';
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

  /** One event of the order: its detail-type, its time and its id, as text. */
  function eventRow(event) {
    var item = document.createElement('li');
    item.className = 'event';
    item.dataset.id = event.id;
    item.dataset.detailType = event['detail-type'];
    var type = document.createElement('strong');
    type.className = 'event-type';
    type.textContent = event['detail-type'];
    var time = document.createElement('time');
    time.className = 'event-time';
    time.dateTime = event.time;
    time.textContent = localTime(event.time);
    var id = document.createElement('span');
    id.className = 'event-id mono';
    id.textContent = event.id;
    item.append(type, time, id);
    return item;
  }

  /** Says something about the events (none yet, or why they could not be loaded). */
  function setEventsStatus(text) {
    var status = $('events-status');
    status.hidden = !text;
    // The same text again is left alone: the result card is a live region.
    if (text && status.textContent !== text) status.textContent = text;
  }

  /** Lists the order's events, oldest first; the list is redrawn only when they changed. */
  function showEvents(events) {
    var list = $('events');
    setEventsStatus(events.length === 0 ? 'None yet: an event is published when the order is paid, closed or fails.' : '');
    list.hidden = events.length === 0;
    var ids = events
      .map(function (event) {
        return event.id;
      })
      .join(' ');
    if (list.dataset.ids === ids) return;
    list.dataset.ids = ids;
    list.replaceChildren.apply(list, events.map(eventRow));
  }

  /** GET /events?outTradeNo= from this page's server; the detail-types listed, or null if it failed. */
  async function refreshEvents(outTradeNo, state) {
    try {
      var data = await callApi('GET', '/events?outTradeNo=' + encodeURIComponent(outTradeNo), undefined, { base: '' });
      if (!data || !Array.isArray(data.events)) throw new Error('unexpected answer');
      if (state.stopped) return null;
      showEvents(data.events);
      return data.events.map(function (event) {
        return event['detail-type'];
      });
    } catch (error) {
      if (state.stopped) return null;
      setEventsStatus('Could not load the events (' + error.message + ').');
      return null;
    }
  }

  /**
   * Follows an order until it ends, listing its events as it goes; once it has ended, the events
   * only, until the final state's event is listed (or after a few tries).
   */
  function follow(outTradeNo) {
    var state = { stopped: false, timer: null, ended: null, triesAfterEnd: 0 };
    async function tick() {
      if (state.stopped) return;
      if (!state.ended) {
        try {
          var order = await callApi('GET', '/orders/' + encodeURIComponent(outTradeNo));
          if (state.stopped) return;
          setStatus(order);
          $('waiting').textContent = 'Waiting for payment…';
          if (TERMINAL[order.status]) state.ended = order.status;
        } catch (error) {
          if (state.stopped) return;
          $('waiting').textContent = 'Could not check the order (' + error.message + '); retrying…';
        }
      }
      var listed = await refreshEvents(outTradeNo, state);
      if (state.stopped) return;
      if (state.ended) {
        state.triesAfterEnd += 1;
        var found = listed && listed.indexOf(FINAL_EVENT[state.ended]) >= 0;
        if (found || state.triesAfterEnd >= FINAL_EVENT_TRIES) return;
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
  $('products-retry').addEventListener('click', loadProducts);

  form.addEventListener('submit', async function (event) {
    event.preventDefault();
    if (creating) return;
    showError('');
    var lines = cartLines();
    if (lines.items.length === 0) {
      showError('Add a product to the cart first.');
      return;
    }
    if (lines.items.length > MAX_LINES) {
      showError('An order takes at most ' + MAX_LINES + ' different products.');
      return;
    }
    stopFollowing();
    var choice = selectedChoice();
    var body = requestBody(lines.items, choice);
    creating = true;
    refreshForm();
    var payer = null;
    try {
      if (choice === 'MINIPROGRAM') {
        payButton.textContent = 'Logging in…';
        try {
          payer = await miniProgramSession();
        } catch (error) {
          showError('Could not log in to the mini-program (wx.login simulated): ' + error.message);
          return;
        }
      }
      payButton.textContent = 'Creating order…';
      var order = await callApi('POST', '/orders', body, { token: payer && payer.token });
      if (!order || !order.outTradeNo || !order.pay) throw new Error('unexpected answer ' + JSON.stringify(order));
      showOrder(order, body.tradeType, lines.estimate, payer);
      poll = follow(order.outTradeNo);
      // The server priced it differently: the catalog changed, so the cart shows the new prices.
      if (order.totalFee !== lines.estimate) void loadProducts();
    } catch (error) {
      if (payer && error.status === 401) {
        // The API refused the session: it is of no more use, and the next Pay logs in again.
        forgetSession();
        showError("The payer's session was refused (HTTP 401): " + error.message + '. Press Pay to log in again.');
        return;
      }
      showError('Could not create the order: ' + error.message);
      // A product that went off sale (or changed) is named by items.N.sku: show the catalog as it is now.
      if (error.field && /^items/.test(error.field)) void loadProducts();
    } finally {
      creating = false;
      refreshForm();
    }
  });

  $('new-order').addEventListener('click', function () {
    stopFollowing();
    result.hidden = true;
    form.closest('.card').classList.remove('done');
    window.scrollTo({ top: 0, behavior: 'smooth' });
    var first = cart.querySelector('input');
    if (first) first.focus();
  });

  // Without a mini-program to log in to, the page offers no mini-program mode.
  $('miniprogram-type').hidden = !config.miniProgramAppId;
  refreshForm();
  void loadProducts();
})();
