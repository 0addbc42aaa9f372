import type { Merchant } from './api';
import type { EmulatorState, Order } from './state';

/**
 * The "scan" page: what the WeChat app shows after scanning a NATIVE order's QR code, with a Pay
 * button standing in for the user paying. `GET /__sim/scan?code_url=weixin://wxpay/bizpayurl?pr=...`
 * finds the order by its code_url (as WeChat resolves the QR code); `?out_trade_no=...` finds any
 * order, for trade types paid inside WeChat (JSAPI, MWEB, APP). The button calls `POST /__sim/pay`.
 */

export interface PageAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface ScanPageContext {
  state: EmulatorState;
  merchant: Merchant;
}

export const SCAN_PATH = '/__sim/scan';

/** Answers `/__sim/scan`; undefined for every other path. */
export function answerScanPage(ctx: ScanPageContext, method: string, url: string): PageAnswer | undefined {
  const parsed = new URL(url, 'http://emulator');
  if (parsed.pathname !== SCAN_PATH) return undefined;
  if (method !== 'GET' && method !== 'HEAD') {
    return page(405, 'Not allowed', `<p class="note">${SCAN_PATH} takes GET.</p>`);
  }
  const codeUrl = parsed.searchParams.get('code_url');
  const outTradeNo = parsed.searchParams.get('out_trade_no');
  if (!codeUrl && !outTradeNo) {
    return page(
      400,
      'Nothing to scan',
      '<p class="note">Open this page with <code>?code_url=weixin://wxpay/bizpayurl?pr=…</code> or <code>?out_trade_no=…</code>.</p>',
    );
  }
  const order = codeUrl ? findByCodeUrl(ctx.state, codeUrl) : ctx.state.orders.get(outTradeNo ?? '');
  if (!order) {
    const what = codeUrl ? `QR code <code>${escapeHtml(codeUrl)}</code>` : `order <code>${escapeHtml(outTradeNo ?? '')}</code>`;
    return page(
      404,
      'Order not found',
      `<div class="icon bad" aria-hidden="true">!</div><h1>Order not found</h1><p class="note">The emulator knows no ${what}.</p>`,
    );
  }
  return page(200, 'WeChat Pay', orderSheet(ctx.merchant, order));
}

function findByCodeUrl(state: EmulatorState, codeUrl: string): Order | undefined {
  for (const order of state.orders.values()) if (order.codeUrl === codeUrl) return order;
  return undefined;
}

function yuan(fen: number): string {
  return `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function orderSheet(merchant: Merchant, order: Order): string {
  const state = order.state;
  return `
<div class="sheet" id="sheet" data-state="${state}" data-out-trade-no="${escapeHtml(order.outTradeNo)}">
  <p class="merchant">Merchant <strong>${escapeHtml(merchant.mchId)}</strong></p>
  <p class="description" id="description">${escapeHtml(order.body)}</p>
  <p class="amount"><span class="currency">¥</span><span id="amount">${yuan(order.totalFee)}</span></p>
  <dl class="facts">
    <div><dt>Order no.</dt><dd class="mono">${escapeHtml(order.outTradeNo)}</dd></div>
    <div><dt>Trade type</dt><dd>${escapeHtml(order.tradeType)}</dd></div>
    <div><dt>App id</dt><dd class="mono">${escapeHtml(order.appId)}</dd></div>
  </dl>
  <div id="unpaid" ${state === 'NOTPAY' ? '' : 'hidden'}>
    <button type="button" class="pay" id="pay">Pay ¥${yuan(order.totalFee)}</button>
    <p class="note">This page stands in for the WeChat app: Pay calls the emulator's <code>POST /__sim/pay</code>,
      which then sends the payment callback to the merchant.</p>
  </div>
  <div id="paid" ${state === 'SUCCESS' ? '' : 'hidden'}>
    <div class="icon ok" aria-hidden="true">✓</div>
    <p class="result" id="result">Payment successful</p>
    <p class="note">Transaction <span class="mono" id="transaction-id">${escapeHtml(order.transactionId ?? '')}</span></p>
  </div>
  <div id="closed" ${state === 'CLOSED' ? '' : 'hidden'}>
    <div class="icon bad" aria-hidden="true">×</div>
    <p class="result">This order is closed and can no longer be paid.</p>
  </div>
  <p class="error" id="error" role="alert" hidden></p>
</div>
<script>
(function () {
  var sheet = document.getElementById('sheet');
  var button = document.getElementById('pay');
  var error = document.getElementById('error');
  button.addEventListener('click', async function () {
    button.disabled = true;
    button.textContent = 'Paying…';
    error.hidden = true;
    try {
      var response = await fetch('/__sim/pay', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ out_trade_no: sheet.dataset.outTradeNo }),
      });
      var data = await response.json();
      if (!response.ok) throw new Error((data.error && data.error.message) || 'HTTP ' + response.status);
      document.getElementById('transaction-id').textContent = data.transaction_id;
      document.getElementById('unpaid').hidden = true;
      document.getElementById('paid').hidden = false;
      sheet.dataset.state = data.trade_state;
    } catch (e) {
      error.textContent = 'Payment failed: ' + e.message;
      error.hidden = false;
      button.disabled = false;
      button.textContent = 'Try again';
    }
  });
})();
</script>`;
}

const STYLE = `
:root { font-family: system-ui, -apple-system, "Segoe UI", "PingFang SC", "Noto Sans CJK SC", sans-serif; color: #1f2329; background: #ededed; }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: flex; flex-direction: column; align-items: center; line-height: 1.45; }
[hidden] { display: none !important; }
.top { width: 100%; background: #2e2e2e; color: #fff; text-align: center; padding: 12px 16px; font-weight: 600; }
.top small { display: block; font-weight: 400; opacity: 0.7; font-size: 0.75rem; }
main { width: 100%; max-width: 420px; padding: 16px; }
.sheet, .card { background: #fff; border-radius: 12px; padding: 24px 20px; text-align: center; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.merchant { margin: 0; color: #6b7280; font-size: 0.9rem; }
.description { margin: 6px 0 0; font-size: 1rem; overflow-wrap: anywhere; }
.amount { margin: 10px 0 18px; font-size: 2.4rem; font-weight: 600; letter-spacing: 0.01em; }
.currency { font-size: 1.5rem; margin-right: 2px; }
.facts { margin: 0 0 20px; padding: 12px 0 0; border-top: 1px solid #eee; font-size: 0.85rem; text-align: left; display: grid; gap: 4px; }
.facts div { display: grid; grid-template-columns: 6.5em minmax(0, 1fr); gap: 8px; }
.facts dt { color: #6b7280; }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.mono, code { font-family: ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 0.85em; overflow-wrap: anywhere; }
.pay { width: 100%; border: 0; border-radius: 8px; background: #07c160; color: #fff; font: inherit; font-size: 1.1rem; font-weight: 600; padding: 13px; cursor: pointer; }
.pay:hover { background: #06a050; }
.pay:disabled { opacity: 0.6; cursor: progress; }
.note { color: #6b7280; font-size: 0.8rem; margin: 12px 0 0; }
.icon { width: 56px; height: 56px; margin: 0 auto 8px; border-radius: 50%; display: grid; place-items: center; font-size: 2rem; color: #fff; }
.icon.ok { background: #07c160; }
.icon.bad { background: #d93025; }
.result { margin: 0; font-size: 1.15rem; font-weight: 600; }
.error { color: #d93025; background: #fdecea; border-radius: 8px; padding: 10px; font-size: 0.9rem; margin: 12px 0 0; }
h1 { font-size: 1.2rem; margin: 0 0 8px; }
`;

function page(status: number, title: string, content: string): PageAnswer {
  const body = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)} · WeChat Pay emulator</title>
<style>${STYLE}</style>
</head>
<body>
<header class="top">WeChat Pay<small>emulator · stands in for the WeChat app</small></header>
<main>${content.includes('class="sheet"') ? content : `<div class="card">${content}</div>`}</main>
</body>
</html>
`;
  return {
    status,
    headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' },
    body,
  };
}
